"""Benchmark of the backtest engine (credit_rl.backtest.engine): 1,000 bonds x 5,000 days with costs.

Prints, all measured in one run:
  * throughput of the PnL + cost kernel (`daily_pnl`: spread, carry, financing, half-spread, square-root impact,
    delay; summed per day) in bond-days per second, with all numba threads and with one thread;
  * the same for a whole `run_backtest` of a rule (decisions, weights, kernel, daily table, trade blotter);
  * the per-bond-day time of a plain pandas row loop (DataFrame.itertuples) of the same arithmetic on a
    subsample, that it agrees with the kernel there, and the ratio loop / kernel.

Run: .venv/bin/python tests/benchmarks/bench_backtest.py [--bonds 1000] [--days 5000]
Not collected by pytest (a script; benchmarks print figures, they never assert timings).
Targets (issue 6): >= 100M bond-days/s and >= 100x the row loop.
"""
import argparse
import os
import platform
import time
from dataclasses import replace

import numba
import numpy as np
import pandas as pd

from credit_rl.backtest.engine import BacktestConfig, daily_pnl, market_from_paths, run_backtest, weights_from_targets, decide
from credit_rl.market.bond import SpreadProcessParams, simulate_spread_paths
from credit_rl.agents.rules import MomentumRule


def best_of(fn, repeats):
    "Fastest and median wall time of `repeats` calls, seconds."
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def row_loop(weights, market, config):
    "The kernel's arithmetic as a plain pandas row loop over (day, bond) rows; returns daily (return, cost)."
    T, n = market.n_days, market.n_bonds
    t_idx, j_idx = np.meshgrid(np.arange(T), np.arange(n), indexing="ij")
    t_idx, j_idx = t_idx.ravel(), j_idx.ravel()
    rows = pd.DataFrame(dict(t=t_idx, w0=weights[t_idx, j_idx], w1=weights[t_idx + 1, j_idx],
                             s0=market.spread_bp[t_idx, j_idx], s1=market.spread_bp[t_idx + 1, j_idx],
                             d0=market.spread_duration_years[t_idx, j_idx], d1=market.spread_duration_years[t_idx + 1, j_idx],
                             hs1=market.half_spread_bp[t_idx + 1, j_idx], vol1=market.spread_vol_bp_day[t_idx + 1, j_idx],
                             v1=market.volume_usd[t_idx + 1, j_idx], fin=market.financing_spread_bp_per_yr[j_idx]))
    K, Y, m, dt = config.capital_usd, config.impact_coef, config.cost_multiplier, 1 / 252
    ret, cost = np.zeros(T), np.zeros(T)
    t0 = time.perf_counter()
    for r in rows.itertuples(index=False):
        pnl = -r.w0 * r.d0 * (r.s1 - r.s0) / 1e4 + r.w0 * r.s0 / 1e4 * dt - r.w0 * r.fin / 1e4 * dt
        q = abs((r.w1 - r.w0) * K)
        c = 0.0
        if q > 0:
            sig = r.d1 * r.vol1 / 1e4
            c = m * (r.hs1 / 1e4 * q + Y * sig * np.sqrt(q / r.v1) * q) / K
        ret[r.t] += pnl - c; cost[r.t] += c
    return ret, cost, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bonds", type=int, default=1_000)
    ap.add_argument("--days", type=int, default=5_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--loop-bonds", type=int, default=50, help="bonds of the row-loop subsample")
    ap.add_argument("--loop-days", type=int, default=1_000, help="days of the row-loop subsample")
    a = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, numba {numba.__version__}, "
          f"{numba.get_num_threads()} numba threads, threading layer {numba.config.THREADING_LAYER}; "
          f"load average {os.getloadavg()[0]:.1f} (other processes share the cores: figures vary with it)")

    t0 = time.perf_counter()
    paths = simulate_spread_paths(SpreadProcessParams(), a.days, n_paths=a.bonds, seed=0)
    market = market_from_paths(paths, spread_duration_years=np.linspace(2.0, 12.0, a.bonds),
                               maturity_years=np.linspace(2.5, 30.0, a.bonds), start=0)
    rule = MomentumRule(lookback_days=21, short_weight=-1.0)   # trades often: exercises the cost path
    config = BacktestConfig(delay_minutes=15.0, informed_share=0.2)
    weights = weights_from_targets(decide(rule, market), market.start)
    print(f"set-up (simulate {a.bonds:,} x {a.days:,} market, rule targets): {time.perf_counter() - t0:.1f} s; "
          f"{np.count_nonzero(np.diff(weights, axis=0)) / weights[1:].size:.1%} of bond-days trade")

    bond_days = a.bonds * a.days
    daily_pnl(weights, market, config)                                   # compile / load cache
    n_threads = numba.get_num_threads()
    sec, med = best_of(lambda: daily_pnl(weights, market, config), a.repeats)
    numba.set_num_threads(1)
    sec1, med1 = best_of(lambda: daily_pnl(weights, market, config), a.repeats)
    numba.set_num_threads(n_threads)
    print(f"kernel (PnL + costs), {n_threads} threads: best {sec * 1e3:6.1f} ms = {bond_days / sec / 1e6:6.1f} M bond-days/s "
          f"(median {bond_days / med / 1e6:.1f})")
    print(f"kernel (PnL + costs), 1 thread : best {sec1 * 1e3:6.1f} ms = {bond_days / sec1 / 1e6:6.1f} M bond-days/s "
          f"(median {bond_days / med1 / 1e6:.1f})")
    sec_full, _ = best_of(lambda: run_backtest(rule, market, config), 2)
    print(f"run_backtest end to end (rule targets, weights, kernel, tables, blotter): {sec_full:.2f} s = "
          f"{bond_days / sec_full / 1e6:.1f} M bond-days/s")

    sub = market_from_paths({k: v[: a.loop_bonds, : a.loop_days + 1] for k, v in paths.items()},
                            spread_duration_years=market.spread_duration_years[0, : a.loop_bonds],
                            maturity_years=np.linspace(2.5, 30.0, a.bonds)[: a.loop_bonds], start=0)
    w_sub = np.ascontiguousarray(weights[: a.loop_days + 1, : a.loop_bonds])
    no_delay = replace(config, delay_minutes=0.0)          # the loop books spread + impact (delay is 0 here)
    ret, cost, sec_loop = row_loop(w_sub, sub, no_delay)
    k_out = daily_pnl(w_sub, sub, no_delay)
    agree = np.abs(ret - k_out[:, 0]).max()
    loop_per = sec_loop / (a.loop_bonds * a.loop_days)
    print(f"pandas row loop (itertuples), {a.loop_bonds} bonds x {a.loop_days} days: {sec_loop:.2f} s = "
          f"{1 / loop_per / 1e6:.3f} M bond-days/s; max |loop - kernel| daily return = {agree:.2e}")
    print(f"ratio per bond-day (kernel on the full 1,000 x 5,000 run, loop on the subsample): "
          f"row loop / kernel = {loop_per / (sec / bond_days):,.0f}x ({n_threads} threads), "
          f"{loop_per / (sec1 / bond_days):,.0f}x (1 thread)")
    print(f"targets: >= 100 M bond-days/s -> {'met' if bond_days / sec >= 1e8 else 'NOT met'}; "
          f">= 100x the loop -> {'met' if loop_per / (sec / bond_days) >= 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
