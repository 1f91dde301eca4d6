"""Speed of the advisor: `import advisor` and `recommend()` on a cached fit, medians.

Prints both sides: the interpreter start alone, the start plus `import advisor` (its names load on
first use), and the start plus `import advisor` with `advisor.recommend` and `advisor.Budget`
resolved (numpy, scipy and pydantic loaded: what a first call pays before it runs).
Usage: python benchmarks/speed.py [--repeats N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    import numpy
    import scipy

    print(f"python {platform.python_version()}, numpy {numpy.__version__}, scipy "
          f"{scipy.__version__}, {platform.processor() or platform.machine()}")
    bare = wall([sys.executable, "-c", "pass"], args.repeats)
    imp = wall([sys.executable, "-c", "import advisor"], args.repeats)
    api = wall([sys.executable, "-c", "import advisor; advisor.recommend; advisor.Budget"],
               args.repeats)
    print(f"interpreter start          median {1e3 * bare:7.1f} ms")
    print(f"start + import advisor     median {1e3 * imp:7.1f} ms  -> import alone "
          f"{1e3 * (imp - bare):.1f} ms")
    print(f"start + import advisor, recommend and Budget loaded  median {1e3 * api:7.1f} ms  "
          f"-> import alone {1e3 * (api - bare):.1f} ms (goal < 300 ms)")

    import advisor

    advisor.recommend(1e17)  # load and cache the fit
    cases = {
        "compute": advisor.Budget(compute=1e17),
        "data": advisor.Budget(data=6e5),
        "compute+data": advisor.Budget(compute=3e16, data=8e5),
        "total": advisor.Budget(total=1e18),
    }
    for name, budget in cases.items():
        times = []
        for _ in range(200):
            t = time.perf_counter()
            advisor.recommend(budget, fit="bro/h1-crawl-v0")
            times.append(time.perf_counter() - t)
        print(f"recommend({name:<12}) median {1e3 * statistics.median(times):7.3f} ms "
              f"(goal < 2 ms)")
    t = time.perf_counter()
    from advisor.fitfile import read_fit_file
    from advisor.registry import fit_path

    path = fit_path("bro/h1-crawl-v0")
    times = []
    for _ in range(20):
        t = time.perf_counter()
        read_fit_file(path)
        times.append(time.perf_counter() - t)
    print(f"uncached fit-file load      median {1e3 * statistics.median(times):7.2f} ms")


if __name__ == "__main__":
    main()
