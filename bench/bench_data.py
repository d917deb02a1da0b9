"""Benchmark the data layer and print the figures the README quotes.

    python bench/bench_data.py [--students 1000000] [--oulad DIR]

Each measurement runs in a fresh child process, so its peak memory (max RSS, which includes
DuckDB's and Arrow's native allocations) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
kind, arg, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
start = time.perf_counter()
if kind == "oulad":
    from waymark.training.ingest.oulad import import_oulad
    summary = import_oulad(Path(arg), out)
    rows, extra = summary.rows, {"total_count": summary.total_count}
elif kind == "synth":
    from waymark.training.ingest.synthetic import SynthConfig, generate
    summary = generate(out, SynthConfig(students=int(arg), seed=1))
    rows, extra = summary.rows, {}
else:
    from waymark.models.data import validate_folder
    report = validate_folder(out)
    rows, extra = report.row_counts, {"ok": report.ok}
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "rows": rows, **extra}))
"""


def run(kind: str, arg: str, out: Path) -> dict[str, object]:
    """Run one measurement in a child process."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, arg, str(out)], check=True, capture_output=True, text=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=1_000_000)
    parser.add_argument("--oulad", default=os.environ.get("WAYMARK_OULAD_DIR"))
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("WAYMARK_BENCH_TMP")) as tmp:
        if args.oulad:
            r = run("oulad", args.oulad, Path(tmp) / "oulad")
            rows = r["rows"]
            assert isinstance(rows, dict)
            print(
                f"OULAD import (read, map, write Parquet, validate): {r['seconds']:.1f} s, "
                f"peak memory {r['peak_mb']:.0f} MB; {rows['registrations']:,} registrations, "
                f"{rows['activity']:,} activity rows, total count {r['total_count']:,}"
            )
            v = run("validate", "", Path(tmp) / "oulad")
            print(
                f"OULAD validate (all contract rules): {v['seconds']:.1f} s, "
                f"peak memory {v['peak_mb']:.0f} MB"
            )
        else:
            print("OULAD: skipped (set WAYMARK_OULAD_DIR or pass --oulad)")
        r = run("synth", str(args.students), Path(tmp) / "synth")
        rows = r["rows"]
        assert isinstance(rows, dict)
        total = sum(int(v) for v in rows.values())
        seconds = float(str(r["seconds"]))
        print(
            f"Synthetic cohort of {args.students:,} students: {total:,} rows "
            f"({rows['activity']:,} activity) in {seconds:.1f} s = {total / seconds:,.0f} rows/s, "
            f"peak memory {r['peak_mb']:.0f} MB"
        )
        size = sum(p.stat().st_size for p in (Path(tmp) / "synth").rglob("*") if p.is_file())
        print(f"  on disk: {size / 1e9:.2f} GB")
        v = run("validate", "", Path(tmp) / "synth")
        print(
            f"Synthetic validate (all contract rules): {v['seconds']:.1f} s, "
            f"peak memory {v['peak_mb']:.0f} MB, ok={v['ok']}"
        )


if __name__ == "__main__":
    main()
