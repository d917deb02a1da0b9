"""Coverage of the per-student 90% intervals of true chances, by model family, on cohorts of known chances.

    python bench/bench_intervals.py [--cohorts 40] [--sizes 1000 4000] [--gbm-estimators 300]

A student's true chance is never seen in real data, so coverage of it can only be measured where
the chances are made: each training cohort draws features and a logistic truth, trains a bundle
of each family exactly as training does (``training.pipeline._calibrated``: the fit, its
out-of-fold Platt calibration and the jackknife interval table), and a held-out cohort of 5,000
from the same truth counts the share of true chances inside their intervals. Coverage is an
average over training cohorts (one model errs the same way for many students), so the script
prints the mean over ``--cohorts`` cohorts, its spread, and the intervals' mean width.

The logistic family can draw the truth exactly; LightGBM cannot, and its intervals (model
uncertainty only) do not cover its bias: the gap between the two lines is what the docs call
"it does not cover bias". ``tests/test_uncertainty.py`` asserts the logistic figure within 3
points of nominal; nothing here is asserted.
"""

from __future__ import annotations

import argparse

import numpy as np

from waymark.models.uncertainty import NOMINAL
from waymark.training.fitting import FitConfig
from waymark.training.known_chances import HELD_OUT, held_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=40)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument(
        "--gbm-estimators", type=int, default=FitConfig().gbm_estimators, help="LightGBM rounds"
    )
    args = parser.parse_args()
    print(f"nominal {NOMINAL:.2f}; {args.cohorts} cohorts a line, each checked on {HELD_OUT:,} held out")
    print(f"{'family':<10} {'students':>8} {'coverage':>9} {'sd':>6} {'min':>6} {'max':>6} {'width':>6}")
    for family in ("logistic", "gbm"):  # gbm: LightGBM, the family training usually chooses
        for n in args.sizes:
            got = np.array(
                [
                    held_out(s, n, family=family, gbm_estimators=args.gbm_estimators)
                    for s in range(args.cohorts)
                ]
            )
            cov, width = got[:, 0], got[:, 1]
            print(
                f"{family:<10} {n:>8,} {cov.mean():>9.3f} {cov.std():>6.3f} {cov.min():>6.3f} "
                f"{cov.max():>6.3f} {width.mean():>6.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
