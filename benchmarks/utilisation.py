"""Was a run bound by the CPU or the GPU? CPU and GPU utilisation sampled while it runs.

`Sampler(path)` is a context manager: every `every` seconds a thread records the share of all
cores that was busy since the last sample (from /proc/stat: time neither idle nor waiting on
I/O, over every cpu) and, where `nvidia-smi` is found, the GPU's `utilization.gpu` (the share of
the driver's last sample period in which some kernel ran: how often the GPU was busy, not how
much of it was used) and its memory in use. Rows go to a CSV as they come, so a run that is cut
short keeps them. `summary(path, start, end)` is one line over the rows between two unix times
(a stage's first population's start and last one's end, `stage_windows`).

  python benchmarks/utilisation.py SAMPLES.csv [OUT_DIR]   # summarise a run's samples, by stage
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

COLUMNS = ("unix", "cpu_busy", "gpu_util", "gpu_mem_mib")


def cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies over all cpus since boot, or None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user time
    return total - idle, total


def gpu_sample(smi: str | None) -> tuple[str, str]:
    """(utilization.gpu %, memory.used MiB) of the first GPU as text, or ('', '')."""
    if smi is None:
        return "", ""
    try:
        res = subprocess.run([smi, "--query-gpu=utilization.gpu,memory.used",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=5)
        util, mem = (x.strip() for x in res.stdout.splitlines()[0].split(","))
        float(util), float(mem)
        return util, mem
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return "", ""


class Sampler:
    """Samples utilisation into the CSV at `path` (appended to: a resumed run adds its rows)
    from __enter__ to __exit__."""

    def __init__(self, path: str | os.PathLike, every: float = 1.0):
        self.path, self.every = Path(path), every
        self.stop = threading.Event()
        self.smi = shutil.which("nvidia-smi")
        self.thread = threading.Thread(target=self._run, name="utilisation", daemon=True)

    def __enter__(self) -> Sampler:
        # The file and its header exist before the caller's block runs (a reader polling the
        # CSV from the start must not race the thread's first write).
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.file = open(self.path, "a", newline="")
        if new:
            csv.writer(self.file).writerow(COLUMNS)
            self.file.flush()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.file.close()

    def _run(self) -> None:
        out = csv.writer(self.file)
        last = cpu_times()
        while not self.stop.wait(self.every):
            now = cpu_times()
            busy = ""
            if last is not None and now is not None and now[1] > last[1]:
                busy = f"{(now[0] - last[0]) / (now[1] - last[1]):.4f}"
            last = now
            out.writerow((f"{time.time():.3f}", busy, *gpu_sample(self.smi)))
            self.file.flush()


def _stats(x: np.ndarray, scale: float) -> str:
    x = x[np.isfinite(x)] * scale
    if not len(x):
        return "not sampled"
    return (f"{x.mean():.0f}% (median {np.median(x):.0f}%, 90th percentile "
            f"{np.percentile(x, 90):.0f}%)")


def summary(path: str | os.PathLike, start: float = -np.inf, end: float = np.inf) -> str:
    """'N samples: CPU busy ..., GPU busy ...' over the rows with start <= unix <= end."""
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if start <= float(r["unix"]) <= end]

    def col(name: str) -> np.ndarray:
        return np.array([float(r[name]) if r[name] else np.nan for r in rows])

    if not rows:
        return "no samples"
    mem = col("gpu_mem_mib")
    peak = f", GPU memory up to {np.nanmax(mem):,.0f} MiB" if np.isfinite(mem).any() else ""
    return (f"{len(rows)} samples: CPU busy {_stats(col('cpu_busy'), 100)} of "
            f"{os.cpu_count()} cores, GPU busy {_stats(col('gpu_util'), 1)}{peak}")


def stage_windows(out_dir: str | os.PathLike) -> dict[str, tuple[float, float]]:
    """{stage: (first population's start, last one's end)} from an out-dir's unit files (the
    clock `advisor calibrate` prints per stage); stage 's1', 's2', ... from the unit id."""
    spans: dict[str, list[float]] = {}
    for p in sorted(Path(out_dir, "units").glob("*.json")):
        try:
            man = json.loads(p.read_text())["manifest"]
            start, end = float(man["started_unix"]), float(man["finished_unix"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        s = spans.setdefault(p.name.split("_")[0], [start, end])
        s[0], s[1] = min(s[0], start), max(s[1], end)
    return {k: (v[0], v[1]) for k, v in spans.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("samples", help="the CSV a Sampler wrote")
    ap.add_argument("out_dir", nargs="?", help="the run's out-dir: a line per stage too")
    args = ap.parse_args()
    try:
        print(f"whole run: {summary(args.samples)}")
        for stage, (a, b) in stage_windows(args.out_dir).items() if args.out_dir else ():
            print(f"stage {stage[1:]} ({b - a:.0f} s): {summary(args.samples, a, b)}")
    except (OSError, KeyError, ValueError) as exc:
        ap.error(f"{args.samples} is not a utilisation CSV ({' '.join(str(exc).split())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
