"""Run every benchmarks/bench_*.py in turn; each writes reports/benchmarks/<area>.json.

Usage: python benchmarks/run.py [--quick] [area ...]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    """Run the selected benchmarks (all by default); return non-zero if any failed."""
    flags = [a for a in argv if a.startswith("-")]
    areas = [a for a in argv if not a.startswith("-")]
    scripts = sorted(HERE.glob("bench_*.py"))
    if areas:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in areas]
    failed = []
    for script in scripts:
        t0 = time.time()
        print(f"== {script.name}", flush=True)
        code = subprocess.call([sys.executable, str(script), *flags], cwd=HERE.parent)
        print(f"== {script.name}: exit {code} in {time.time() - t0:.0f}s", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
