"""Wall time of a cold `rwmspec validate`: a fresh interpreter per run, as in pre-commit or CI.

Runs `python -m rwmspec validate` on the four stage specs together and on each spec alone, several times, and
prints a table (min / median / max seconds). The target is < 0.5 s for the four specs. `python -c pass` is
measured as the floor every command pays. Results go to benchmarks/results/validate.json.

    python benchmarks/validate.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results_file import RESULTS_DIR, write_json

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.5


def wall(argv: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    specs = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").glob("anymal_d_*.toml"))
    cases = {
        "python -c pass (interpreter floor)": [sys.executable, "-c", "pass"],
        f"validate {len(specs)} specs": [sys.executable, "-m", "rwmspec", "validate", *specs],
    }
    for spec in specs:
        cases[f"validate {Path(spec).name}"] = [sys.executable, "-m", "rwmspec", "validate", spec]
    wall(cases[f"validate {len(specs)} specs"], 1)  # warm the OS file cache; the interpreter stays cold
    rows = []
    for name, argv in cases.items():
        times = wall(argv, args.repeats)
        rows.append(
            {
                "case": name,
                "repeats": args.repeats,
                "min_s": min(times),
                "median_s": statistics.median(times),
                "max_s": max(times),
            }
        )
    width = max(len(r["case"]) for r in rows)
    print(f"{'case'.ljust(width)}  {'min s':>7}  {'median s':>8}  {'max s':>7}")
    for r in rows:
        print(f"{r['case'].ljust(width)}  {r['min_s']:7.3f}  {r['median_s']:8.3f}  {r['max_s']:7.3f}")
    four = next(r for r in rows if r["case"] == f"validate {len(specs)} specs")
    verdict = "meets" if four["median_s"] < TARGET_S else "MISSES"
    print(
        f"\nmedian of `rwmspec validate` on {len(specs)} specs: {four['median_s']:.3f} s ({verdict} the "
        f"{TARGET_S} s target)"
    )
    write_json(
        {
            "target_s": TARGET_S,
            "specs": specs,
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "processor": platform.processor(),
            "results": rows,
        },
        RESULTS_DIR / "validate.json",
    )


if __name__ == "__main__":
    main()
