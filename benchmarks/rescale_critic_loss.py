"""Correct the training critic_loss logged by this project's learner before session 13.

Until then a population logged each member's critic losses summed over its own updates since
the previous log, divided by the population's rounds of updates in that window, not by the
member's own updates: a member of utd u in a population whose highest utd is U took part in u
of every U rounds, so its loss was logged u / U times its mean (the utd-1 members of a
population of utds 1, 2 and 4, a quarter). Returns and validation losses were right.

With whole utds (every learning step then runs U rounds, and a member takes u of them) the
logged value times U / u is the member's mean exactly; fractional utds (rounds that vary) are
refused. Each run folder is rescaled once: its manifest then records what its critic_loss is
(`calibration.learner.trainer.CRITIC_LOSS_LOGGED`), as a run written since records it, and
such a folder is left alone. Files are replaced atomically.

  python benchmarks/rescale_critic_loss.py OUT_DIR      # an `advisor calibrate` out-dir or a run
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibration.atomic import atomic_save  # noqa: E402
from calibration.learner.trainer import CRITIC_LOSS_LOGGED  # noqa: E402


def rescale_run(run: Path) -> list[tuple[Path, float]]:
    """Rescale one run folder (the one holding manifest.json); the files and factors used."""
    manifest = json.loads((run / "manifest.json").read_text())
    if manifest.get("critic_loss") == CRITIC_LOSS_LOGGED:
        return []
    utds = [float(u) for u in manifest["config"]["utds"]]
    if any(u != round(u) or u < 1 for u in utds):
        raise SystemExit(f"{run}: utds {sorted(set(utds))} are not all whole numbers; the rounds "
                         "per step varied, so its critic_loss cannot be rescaled exactly")
    top = max(utds)
    done = []
    for path in sorted(run.rglob("critic_loss/*.npy")):
        utd = float(path.parent.parent.parent.name.removeprefix("utd_"))  # utd_{u}/{env}/...
        with open(path, "rb") as fh:
            logs = np.load(fh, allow_pickle=False)
        logs[:, 1:] *= top / utd  # column 0 is the env step
        atomic_save(path, logs)
        done.append((path, top / utd))
    manifest["critic_loss"] = CRITIC_LOSS_LOGGED
    manifest["critic_loss_rescaled"] = (f"logged before session 13; multiplied by the highest utd "
                                        f"({top:g}) over each member's utd "
                                        "(benchmarks/rescale_critic_loss.py)")
    atomic_save(run / "manifest.json", text=json.dumps(manifest, indent=1))
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path, help="a calibrate out-dir, or one population's run")
    args = ap.parse_args()
    runs = sorted(p.parent for p in args.out_dir.rglob("manifest.json"))
    if not runs:
        raise SystemExit(f"{args.out_dir}: no run folder (manifest.json) under it")
    for run in runs:
        done = rescale_run(run)
        factors = sorted({f"x{f:g}" for _, f in done})
        print(f"{run}: " + (f"{len(done)} critic_loss files rescaled ({', '.join(factors)})"
                            if done else "already the mean over each member's own updates"))


if __name__ == "__main__":
    main()
