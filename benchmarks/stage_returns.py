"""Do runs trained another way learn as well? Returns of each (width, utd, batch size) shared by
a baseline and other sets of runs: the final evaluation and the mean over evaluations (after
the first), mean over seeds with its standard error, and each set's difference from the
baseline averaged over configs, with that average's standard error (configs independent).

A set is an out-dir of `advisor calibrate` or `benchmarks/minutes_stage.py` (or a .tgz of
one), or a folder of a .tgz holding several: `PATH` or `LABEL=PATH` or `LABEL=PATH::FOLDER`.
Each set must hold each configuration once (a .tgz of several out-dirs is refused without
::FOLDER) and evaluate it at the same steps as the baseline. Seeds that diverged (NaN) are
left out of a mean; ± is one standard error, n/a with fewer than two seeds.

  python benchmarks/stage_returns.py     # session 19's bf16 stage-1 runs against session 10's
  python benchmarks/stage_returns.py "fp32=out-a" "bf16=out-b"
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from advisor.errors import AdvisorError  # noqa: E402
from calibration.archives import read_runs  # noqa: E402

RUNS = Path(__file__).resolve().parent.parent / "runs"
DEFAULT = [
    f"float32, packed (session 10)={RUNS / 'bro-torch-Hopper-v5-minutes.tgz'}",
    *(f"{name}={RUNS / 'stage1-h100-2026-11-28.tgz'}::{name}"
      for name in ("regions-bf16", "regions-bf16-nopack", "regions-bf16-nopack-evalbg")),
]


def load(spec: str, scratch: Path) -> tuple[str, dict]:
    """{(width, utd, batch_size): (final returns per seed, mean returns per seed)}."""
    label, _, where = spec.rpartition("=") if "=" in spec else ("", "", spec)
    path, _, folder = where.partition("::")
    path = Path(path)
    name = label or where
    if folder:
        dest = scratch / f"{len(list(scratch.iterdir()))}"
        with tarfile.open(path) as tf:
            tf.extractall(dest, filter="data")
        if not (dest / folder).is_dir():
            found = sorted(p.name for p in dest.iterdir() if p.is_dir())
            raise AdvisorError(f"{path} has no folder {folder!r}; its folders: "
                               f"{', '.join(found) or 'none'}")
        path = dest / folder
    out, steps = {}, {}
    for run in read_runs(path):  # refuses an archive holding a configuration twice
        key = (run.width, run.utd, int(run.batch_size))
        if key in out:  # two parameter counts at one width: not this script's case
            raise AdvisorError(f"{name} holds width {key[0]}, utd {key[1]:g}, batch size "
                               f"{key[2]} twice; give one set of runs")
        values = run.values["return"]
        out[key] = (values[-1], np.nanmean(values[1:], 0))
        steps[key] = run.steps["return"]
    return name, out, steps


def sem(x: np.ndarray) -> float:
    """Standard error of the mean over the seeds with a finite value (NaN under two)."""
    x = x[np.isfinite(x)]
    return float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="*", default=DEFAULT, help="the first is the baseline")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            sets = [load(spec, Path(tmp)) for spec in args.sets]
        except (AdvisorError, OSError, tarfile.TarError) as exc:  # one line, exit 2
            hint = "; name one with LABEL=PATH::FOLDER" if "twice" in str(exc) else ""
            ap.error(" ".join(str(exc).split()) + hint)
    keys = sorted(set.intersection(*(set(runs) for _, runs, _ in sets)))
    if not keys:
        ap.error("the sets share no (width, utd, batch size)")
    for label, _, steps in sets[1:]:  # a difference of returns at other steps means nothing
        for k in keys:
            if not np.array_equal(steps[k], sets[0][2][k]):
                ap.error(f"{label} evaluated width {k[0]}, utd {k[1]:g}, batch size {k[2]} at "
                         f"other steps than {sets[0][0]} did ({len(steps[k])} evaluations to "
                         f"step {steps[k][-1]:g} against {len(sets[0][2][k])} to "
                         f"{sets[0][2][k][-1]:g})")
    print(f"{len(keys)} configs in every set; return at the last evaluation (mean over "
          "evaluations after the first), mean over seeds ± standard error")
    for i, (label, _, _) in enumerate(sets):
        print(f"  [{i}] {label}")
    print(f"{'width':>5} {'utd':>4} {'batch':>5}  " + "  ".join(
        f"{'[' + str(i) + ']':>22}" for i in range(len(sets))))
    for k in keys:
        cells = [f"{np.nanmean(r[k][0]):6.1f} ± {sem(r[k][0]):4.1f} ({np.nanmean(r[k][1]):5.1f})"
                 for _, r, _ in sets]
        print(f"{k[0]:>5} {k[1]:>4g} {k[2]:>5}  " + "  ".join(f"{c:>22}" for c in cells))
    base = sets[0][1]
    print("mean over configs, and the difference from [0] with its standard error:")
    for i, (label, runs, _) in enumerate(sets):
        line = []
        for j, what in enumerate(("final", "mean")):
            mean = np.mean([np.nanmean(runs[k][j]) for k in keys])
            d = np.array([np.nanmean(runs[k][j]) - np.nanmean(base[k][j]) for k in keys])
            var = sum(sem(runs[k][j]) ** 2 + sem(base[k][j]) ** 2 for k in keys)
            err = np.sqrt(var) / len(keys)
            line.append(f"{what} {mean:6.1f}" + ("" if i == 0 else
                                                  f" ({d.mean():+5.1f} ± {err:4.1f})"))
        print(f"  [{i}] " + ", ".join(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
