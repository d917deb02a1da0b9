"""Train on the full OULAD (WAYMARK_OULAD_DIR) for both targets and print the later-cohort metrics.

    python bench/bench_training.py [--oulad DIR] [--weeks 4 8 16]

Imports OULAD to a temporary folder once, then trains each target in a fresh child process
(train 2013B + 2013J, test 2014B + 2014J; the model family is chosen on 2013J, never on the test
presentations) and prints AUC, PR-AUC, Brier, ECE and recall at 10% for the chosen weeks, with the
wall time and peak memory of each run. No demographic feature is used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from waymark.training.pipeline import train_folder
from waymark.models.targets import Target
start = time.perf_counter()
outcome = train_folder(Path(sys.argv[1]), target=Target(sys.argv[2]))
seconds = time.perf_counter() - start
weekly = outcome.test_weekly
print(json.dumps({
    "seconds": seconds,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "family": outcome.family,
    "validation": outcome.validation.groupby("family")["auc"].mean().to_dict(),
    "weekly": {int(w): {k: float(v) for k, v in row.items()} for w, row in weekly.iterrows()},
    "lead": outcome.lead,
    "rows": len(outcome.train_rows),
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--oulad", default=os.environ.get("WAYMARK_OULAD_DIR"))
    parser.add_argument("--weeks", type=int, nargs="+", default=[4, 8, 16])
    args = parser.parse_args()
    if not args.oulad:
        sys.exit("set WAYMARK_OULAD_DIR or pass --oulad")
    from waymark.training.ingest.oulad import import_oulad

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "oulad"
        import_oulad(Path(args.oulad), data)
        for target in ("not_completing", "next_assessment_nonsubmission"):
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(data), target], check=True, capture_output=True, text=True
            )
            r = json.loads(done.stdout.strip().splitlines()[-1])
            val = ", ".join(f"{k} {v:.3f}" for k, v in r["validation"].items())
            print(
                f"{target}: chosen family {r['family']} (validation mean AUC: {val}); "
                f"{r['rows']:,} training rows; wall {r['seconds']:.0f} s, peak memory {r['peak_mb']:.0f} MB"
            )
            print("  week    AUC  PR-AUC  Brier    ECE  recall@10%  precision@10%")
            for w in args.weeks:
                m = r["weekly"].get(str(w))
                if m:
                    print(
                        f"  {w:>4}  {m['auc']:.3f}   {m['pr_auc']:.3f}  {m['brier']:.3f}  {m['ece']:.3f}"
                        f"       {m['recall_at_10pct']:.3f}          {m['precision_at_10pct']:.3f}"
                    )
            if r["lead"]:
                lead = r["lead"]
                print(
                    f"  withdrawals reached in the top 10% before withdrawing: "
                    f"{lead['reached_before_withdrawal']:.0%}, "
                    f"median lead {lead['median_lead_days']:.0f} days"
                )


if __name__ == "__main__":
    main()
