"""Wall time to regenerate every shipped fit (100 bootstrap resamples) with 2 workers.

Usage: python benchmarks/regenerate_fits.py [DATA_DIR] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibration.build import N_BOOT, regenerate  # noqa: E402
from calibration.catalogue import catalogue  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                       / "shared" / "data"))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        paths = regenerate(args.data_dir, out, n_boot=N_BOOT, n_jobs=args.jobs)
        dt = time.perf_counter() - t
    print(f"regenerated {len(paths)} of {len(catalogue())} fits, {N_BOOT} bootstrap resamples, "
          f"{args.jobs} workers on {os.cpu_count()} cores: {dt:.1f} s (goal < 60 s)")


if __name__ == "__main__":
    main()
