"""The property-based observation fuzz of `tests/test_fuzz_observations.py`, run longer: generated
observation streams into `Monitor` and into the live core both callbacks use, counting what the
contract forbids.

    .venv/bin/python benchmarks/fuzz_observations.py                  # 10,000 streams
    .venv/bin/python benchmarks/fuzz_observations.py --streams 2000 --seed 1

Prints streams, calls, documented refusals (a TypeError/ValueError naming the bad argument),
bad arguments taken silently, escapes (any other exception into the loop or out of `close()`),
checks switched off, and findings lost on the way to a sink, with the most frequent messages.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_streams import Outcome, run_stream, streams  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000, help="streams in all (half Monitor, half live)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=12, help="most frequent problems to list")
    args = parser.parse_args()
    totals = collections.Counter()
    problems: collections.Counter[str] = collections.Counter()
    started = time.perf_counter()

    def record(outcome: Outcome) -> None:
        totals["streams"] += 1
        totals["calls"] += outcome.calls
        totals["refused"] += outcome.rejected
        totals["accepted_bad"] += outcome.accepted_bad
        totals["escapes"] += len(outcome.escapes)
        totals["switched_off"] += len(outcome.switched_off)
        totals["lost"] += len(outcome.lost)
        totals["findings"] += outcome.findings
        for text in outcome.escapes:
            problems["escape " + _shape(text)] += 1
        for check, reason in outcome.switched_off.items():
            problems[f"switched off {check}: {_shape(reason)}"] += 1
        for text in outcome.lost:
            problems["lost " + _shape(text)] += 1

    for live in (False, True):
        # generation only (no shrinking): every example counts once, failures included
        @settings(
            max_examples=args.streams // 2,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(streams(live=live))
        def play(stream):
            record(run_stream(stream))

        play._hypothesis_internal_use_seed = args.seed + int(live)  # reproducible runs
        play()
    seconds = time.perf_counter() - started
    print(
        f"streams {totals['streams']}, calls {totals['calls']}, findings {totals['findings']}, "
        f"refused (named argument) {totals['refused']}, bad arguments taken silently {totals['accepted_bad']}, "
        f"escapes {totals['escapes']}, checks switched off {totals['switched_off']}, "
        f"findings lost {totals['lost']} ({seconds:.0f} s)"
    )
    for text, count in problems.most_common(args.top):
        print(f"{count:7d}  {text[:160]}")
    return 0


def _shape(text: str) -> str:
    """The message with numbers and quoted values blanked, so like problems are counted together."""
    return re.sub(r"-?\d[\d.e+-]*|'[^']*'", "#", text)


if __name__ == "__main__":
    sys.exit(main())
