"""Benchmark of the synthetic market (credit_rl.market.synthetic): 10,000 paths x 2,520 days of the core state.

Prints, all measured in one run:
  * wall time to simulate 10,000 paths x 2,520 business days of the core state (regime, IG/HY OAS, VIX, MOVE,
    10y yield, liquidity stress, IG/HY bond bid-ask; float32 output, chunked) with all cores, and the peak memory;
  * the share of that time spent drawing the per-path Philox random blocks;
  * per path-day CPU cost on one thread (CPU time, so that other processes on a shared machine do not inflate it);
  * the per-path-day cost of the same kernel (the very same Python source) run as plain Python/NumPy with numba's
    JIT disabled (NUMBA_DISABLE_JIT=1, in a subprocess, on a small subsample), against numba on one thread,
    and the ratio.

Run: .venv/bin/python tests/benchmarks/bench_market.py [--paths 10000] [--days 2520] [--chunk 256]
Not collected by pytest (a script; benchmarks print figures, they never assert timings). Target: < 30 s.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numba
import numpy as np

from credit_rl.market.synthetic import CORE_FIELDS, N_NORMALS, N_UNIFORMS, path_noise, simulate_market

PLAIN_SNIPPET = """
import json, time
from credit_rl.market.synthetic import simulate_market
simulate_market(n_days=5, n_paths=1, fields="core", threads=1)          # imports, first call
t0 = time.process_time(); simulate_market(n_days={days}, n_paths={paths}, seed=1, fields="core", threads=1)
print(json.dumps(dict(seconds=time.process_time() - t0)))
"""


def plain_python_seconds_per_path_day(days, paths):
    "Per path-day seconds of the kernel run as plain Python (numba JIT disabled) in a fresh interpreter."
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", PLAIN_SNIPPET.format(days=days, paths=paths)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"] / (days * paths)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=2_520)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--plain-days", type=int, default=252, help="days of the plain-Python subsample")
    ap.add_argument("--plain-paths", type=int, default=2, help="paths of the plain-Python subsample")
    a = ap.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
          f"{os.cpu_count()} cores, {platform.machine()}")

    simulate_market(n_days=10, n_paths=2, fields="core")                        # compile (or load the cache)
    load0, c0, t0 = os.getloadavg()[0], time.process_time(), time.perf_counter()
    sim = simulate_market(n_days=a.days, n_paths=a.paths, seed=0, fields="core", chunk=a.chunk)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2      # ru_maxrss is in kB on Linux
    out_gb = sum(v.nbytes for v in sim.values()) / 1024**3
    n = a.paths * a.days
    print(f"\n[full run] {a.paths:,} paths x {a.days:,} days, core state {list(CORE_FIELDS)}")
    print(f"  wall time {wall:.2f} s  ({n / wall / 1e6:.2f} M path-days/s, {os.cpu_count()} threads, chunk {a.chunk})"
          f"  target < 30 s: {'met' if wall < 30 else 'NOT met'}")
    print(f"  CPU time {cpu:.2f} s over {os.cpu_count()} cores: {cpu / os.cpu_count():.2f} s wall on an idle machine"
          f" (1-min load average at start {load0:.1f}: other processes compete for the cores)")
    print(f"  output {out_gb:.2f} GB float32; peak RSS {peak_gb:.2f} GB; random numbers per chunk "
          f"{a.chunk * a.days * (N_NORMALS + N_UNIFORMS) * 4 / 1024**2:.0f} MB per thread")
    assert all(np.isfinite(v).all() for k, v in sim.items() if k != "regime")
    del sim

    m = 200                                                                     # where does the time go?
    t0 = time.process_time()
    for i in range(m): path_noise(0, i, a.days)
    rng_per_path = (time.process_time() - t0) / m
    t0 = time.process_time()
    simulate_market(n_days=a.days, n_paths=m, seed=0, fields="core", chunk=m, threads=1)
    numba_1t = (time.process_time() - t0) / (m * a.days)
    kernel_1t = numba_1t - rng_per_path / a.days
    print(f"\n[one thread, {m} paths, CPU time] {numba_1t * 1e9:.0f} ns per path-day, of which random numbers "
          f"{rng_per_path / a.days * 1e9:.0f} ns and the numba kernel {kernel_1t * 1e9:.0f} ns")

    plain = plain_python_seconds_per_path_day(a.plain_days, a.plain_paths)
    print(f"\n[plain Python/NumPy, same kernel source, NUMBA_DISABLE_JIT=1, {a.plain_paths} paths x {a.plain_days} days]")
    print(f"  {plain * 1e6:.1f} us per path-day")
    print(f"  per-step ratio plain / numba (one thread, incl. random numbers): {plain / numba_1t:,.0f}x;"
          f" kernel only (same numpy random numbers subtracted from both): {(plain - rng_per_path / a.days) / kernel_1t:,.0f}x")
    print(f"  full run as plain Python would take ~{plain * n / 3600:.1f} h on one core")


if __name__ == "__main__":
    main()
