"""Run batch 38's programs and score them against labels.csv (the runner: benchmarks/newbugs_runner.py).

OMP_NUM_THREADS=1 .venv/bin/python benchmarks/newbugs38/run_batch.py [--only b01 ...]
    [--json-out PATH] [--jobs 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from newbugs_runner import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(HERE))
