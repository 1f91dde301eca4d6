"""Which compile mode to train a `minutes` stage with, from learner_throughput.py's --json.

Each mode's projected time for a population that makes `updates` population updates one after
another is its set-up (compile, capture, first call) plus the time of those updates; the
fastest wins, where it saves at least 10% over eager (`none`). Prints the projection and the
mode. With `rounds` (the members of each round of an env step: 24,16,8,8 for 24 members of
utds 1, 2 and 4), `none` and `regions` run each round on its span of members
(TrainConfig.spans), an update of k members taking k / rate(k) where the cell kxWIDTH was
measured and what all M take where it was not (an upper bound); `update` (compiled whole, no
spans) runs every round on all M.

  python benchmarks/pick_compile.py pick.json --cell 24x128 --updates 36000 --rounds 24,16,8,8
"""

from __future__ import annotations

import argparse
import json
import math
import sys

MODES = {"none": "fused+graph", "regions": "regions+graph", "update": "cmp+graph"}


def projected(rates: dict, cell: str, updates: int,
              rounds: list[int] | None = None) -> dict[str, float]:
    """Seconds per mode (nan where it was not measured or failed); `rounds`: the module's
    docstring (None: every round on all members)."""
    m, width = (int(x) for x in cell.split("x"))
    rate, setup = rates.get(cell, {}), rates.get(f"{cell} setup_s", {})
    out = {}
    for mode, variant in MODES.items():
        r = rate.get(variant, math.nan)
        if not (r and r > 0):
            out[mode] = math.nan
            continue
        per_round = m / r  # seconds per update of all members
        spans = rounds if rounds and mode != "update" else [m]
        seconds = 0.0
        for k in spans:
            rk = rates.get(f"{k}x{width}", {}).get(variant, math.nan)
            seconds += min(k / rk, per_round) if rk and rk > 0 else per_round
        out[mode] = setup.get(variant, 0.0) + updates * seconds / len(spans)
    return out


def pick(rates: dict, cell: str, updates: int, margin: float = 0.1,
         rounds: list[int] | None = None) -> str:
    times = projected(rates, cell, updates, rounds)
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
    ap.add_argument("--rounds", default=None,
                    help="members of each round of an env step, e.g. 24,16,8,8 (default: "
                         "every round on all members)")
    args = ap.parse_args()
    rounds = [int(k) for k in args.rounds.split(",")] if args.rounds else None
    try:
        with open(args.json) as fh:
            rates = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"pick: no rates ({exc}); none", file=sys.stderr)
        print("none")
        return
    for mode, t in projected(rates, args.cell, args.updates, rounds).items():
        print(f"pick: {mode:<8} {MODES[mode]:<14} projected {t:8.1f} s", file=sys.stderr)
    print(pick(rates, args.cell, args.updates, rounds=rounds))


if __name__ == "__main__":
    main()
