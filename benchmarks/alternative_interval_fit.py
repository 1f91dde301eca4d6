"""A calibrated fit rebuilt under the alternative interval tried on 2026-11-29 and not shipped.

The group scale's level corrected over the configs it covers (`--group-correction C`, as in
benchmarks/subgrid_coverage.py) and the widening floors the rule picks for it
(`--floors UP DOWN`; benchmarks/widen_floors.py --group-correction 1 gives 0.1 and 1.55). The
fit's own runs (an out-dir archive in runs/) are refitted with the command its provenance
records (nothing trains: seconds), and its 80% interval is printed beside the shipped one's.

  python benchmarks/alternative_interval_fit.py bro-torch/Hopper-v5 \
      runs/bro-torch-Hopper-v5-minutes.tgz --group-correction 1 --floors 0.1 1.55
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import advisor  # noqa: E402
from benchmarks.subgrid_coverage import add_alternatives, use_alternatives  # noqa: E402


def span(path_or_id: str) -> str:
    """The 80% interval's span over every target inside the fitted domain, as x of the
    prediction (what `advisor show` prints first)."""
    import numpy as np

    pi = advisor.load_fit(path_or_id).model.prediction_interval
    lo, hi = (np.exp(np.interp(0.8, pi.levels, o)) for o in (pi.log_low, pi.log_high))
    return f"{lo:.2f}x-{hi:.2f}x"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fit_id", help="a calibrated fit (its provenance names its command)")
    ap.add_argument("runs", help="the out-dir archive behind it, e.g. runs/*.tgz")
    add_alternatives(ap)
    args = ap.parse_args()
    words = shlex.split(advisor.load_fit(args.fit_id).model.provenance.command)
    out_dir = words[words.index("--out-dir") + 1]
    use_alternatives(args)
    from advisor.cli import main as cli

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(args.runs) as tar:
            tar.extractall(tmp, filter="data")
        (folder,) = Path(tmp).iterdir()
        words[words.index("--out-dir") + 1] = str(folder)
        out = Path(tmp) / "alternative.json"
        cli(words[1:] + ["--fit-out", str(out)], standalone_mode=False)
        print(f"{args.fit_id}: 80% interval inside the fitted domain, span over targets: shipped "
              f"{span(args.fit_id)}; with --group-correction {args.group_correction:g} "
              f"--floors {' '.join(f'{x:g}' for x in args.floors or ())} {span(str(out))} "
              f"(its recorded out-dir was {out_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
