"""Which compile mode to train a `minutes` stage with, from learner_throughput.py's --json.

Each mode's projected time for a population that makes `updates` population updates one after
another is its set-up (compile, capture, first call) plus updates / (rate / M); the fastest
wins, where it saves at least 10% over eager (`none`). Prints the projection and the mode.

  python benchmarks/pick_compile.py pick.json --cell 24x128 --updates 36000
"""

from __future__ import annotations

import argparse
import json
import math
import sys

MODES = {"none": "fused+graph", "regions": "regions+graph", "update": "cmp+graph"}


def projected(rates: dict, cell: str, updates: int) -> dict[str, float]:
    """Seconds per mode (nan where it was not measured or failed)."""
    m = int(cell.split("x")[0])
    rate, setup = rates.get(cell, {}), rates.get(f"{cell} setup_s", {})
    out = {}
    for mode, variant in MODES.items():
        r = rate.get(variant, math.nan)
        out[mode] = (setup.get(variant, 0.0) + updates * m / r) if r and r > 0 else math.nan
    return out


def pick(rates: dict, cell: str, updates: int, margin: float = 0.1) -> str:
    times = projected(rates, cell, updates)
    best = min((t, mode) for mode, t in times.items() if not math.isnan(t)) if any(
        not math.isnan(t) for t in times.values()) else (math.nan, "none")
    eager = times["none"]
    if best[1] != "none" and not math.isnan(eager) and best[0] > (1 - margin) * eager:
        return "none"
    return best[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("json")
    ap.add_argument("--cell", default="24x128", help="MxWIDTH measured")
    ap.add_argument("--updates", type=int, default=36_000,
                    help="population updates one after another (minutes: 9,000 learning steps "
                         "x 4 updates at utd 4)")
    args = ap.parse_args()
    try:
        with open(args.json) as fh:
            rates = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"pick: no rates ({exc}); none", file=sys.stderr)
        print("none")
        return
    for mode, t in projected(rates, args.cell, args.updates).items():
        print(f"pick: {mode:<8} {MODES[mode]:<14} projected {t:8.1f} s", file=sys.stderr)
    print(pick(rates, args.cell, args.updates))


if __name__ == "__main__":
    main()
