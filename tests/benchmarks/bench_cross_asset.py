"""Benchmark of CrossAssetEnv and its batched twin: env-steps per CPU-second, all measured in one run on one core.

Run: .venv/bin/python tests/benchmarks/bench_cross_asset.py [--seconds 1.5]
Not collected by pytest (a script; benchmarks print ratios, they never assert timings).

The market is exogenous, so each episode's path is simulated at reset (episode_market + episode_table, ~0.1 ms per
env-episode) and the step kernel only reads it. 'kernel only' = batch_step_nb with the table reused (no resets);
'batch' = CrossAssetBatch.step with action checks and same-step autoreset (table rebuilds amortised over 252 steps)."""
import argparse
import os
import platform
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np

from credit_rl.envs.cross_asset import CrossAssetBatch, CrossAssetEnv, CrossAssetSB3VecEnv, CrossAssetVectorEnv, batch_step_nb
from credit_rl.envs.cross_asset_table import N_INSTR, CrossAssetConfig, episode_market, episode_table_nb
from credit_rl.market.synthetic import path_noise


def rate(fn, steps_per_call, seconds, reps=3):
    "env-steps per CPU-second of fn(), best of `reps` runs (process CPU time: the machine is shared)."
    fn()
    best = 0.0
    for _ in range(reps):
        n, t0 = 0, time.process_time()
        while (elapsed := time.process_time() - t0) < seconds / reps:
            for _ in range(5): fn()
            n += 5
        best = max(best, n * steps_per_call / elapsed)
    return best


def actions(n):
    return np.random.default_rng(0).uniform(-0.3, 0.3, size=(n, N_INSTR)).astype(np.float32)


def plain_env(cfg):
    env = CrossAssetEnv(cfg)
    env.reset(seed=0)
    a = actions(1)[0]
    def fn():
        _, _, term, trunc, _ = env.step(a)
        if term or trunc: env.reset()
    return fn


def wrapped_env(cfg):
    "Plain env inside ProjectedActions (hard limits) and ConstraintCosts (CMDP costs), as the constrained chapter runs it."
    from credit_rl.envs.constraints import ConstraintCosts, ConstraintLimits, ProjectedActions
    lim = ConstraintLimits(max_gross_leverage=2.0, max_sector_hhi=0.5, max_rating_share=0.5)
    env = ConstraintCosts(ProjectedActions(CrossAssetEnv(cfg), lim), lim)
    env.reset(seed=0)
    a = actions(1)[0]
    def fn():
        _, _, term, trunc, _ = env.step(a)
        if term or trunc: env.reset()
    return fn


def dummy_vec(cfg, n):
    from stable_baselines3.common.vec_env import DummyVecEnv
    venv = DummyVecEnv([lambda: CrossAssetEnv(cfg) for _ in range(n)])
    venv.seed(0); venv.reset()
    a = actions(n)
    return lambda: venv.step(a)


def kernel_only(cfg, n):
    b = CrossAssetBatch(n, cfg)
    b.reset(seeds=0)
    targets = b.check_actions(actions(n)).copy()
    T = cfg.episode_days
    def fn():
        if b.t[0] >= T: b.t[:] = 0
        batch_step_nb(b.tables, b.t, b.w, b.cum, targets, b.f, b.kp, b.obs, b.rewards, b.terminated, b.truncated, b.infos)
    return fn


def batch(cfg, n):
    b = CrossAssetBatch(n, cfg)
    b.reset(seeds=0)
    a = actions(n)
    return lambda: b.step(a)


def sb3_vec(cfg, n):
    v = CrossAssetSB3VecEnv(n, cfg, seed=0); v.reset()
    a = actions(n)
    return lambda: v.step(a)


def gym_vec(cfg, n):
    v = CrossAssetVectorEnv(n, cfg); v.reset(seed=0)
    a = actions(n)
    return lambda: v.step(a)


def market_only(cfg):
    "Per episode: the random numbers and the market path + table; rate in env-steps (episode_days per call)."
    b = CrossAssetBatch(1, cfg)
    ep = iter(range(10**9))
    def fn():
        episode_table_nb(episode_market(cfg, 0, next(ep), b.market_inputs), cfg.warmup_days, b.k, b.tables[0])
    return fn


def noise_only(cfg):
    ep = iter(range(10**9))
    n_days = cfg.warmup_days + cfg.episode_days + 1
    return lambda: path_noise(0, next(ep), n_days)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.5)
    s = ap.parse_args().seconds
    cfg = CrossAssetConfig()
    T = cfg.episode_days
    print(f"CrossAssetEnv benchmark ({platform.processor() or platform.machine()}, 1 thread, episode_days={T}, "
          f"warmup {cfg.warmup_days}); env-steps per CPU-second; load average {os.getloadavg()[0]:.1f} at start")
    rows = [("plain env (gymnasium step)", rate(plain_env(cfg), 1, s))]
    rows.append(("plain env + ProjectedActions + ConstraintCosts", rate(wrapped_env(cfg), 1, s)))
    rows.append(("SB3 DummyVecEnv, 64 plain envs", rate(dummy_vec(cfg, 64), 64, s)))
    for n in (64, 1024):
        rows.append((f"raw kernel batch_step_nb, {n} envs (no resets)", rate(kernel_only(cfg, n), n, s)))
        rows.append((f"CrossAssetBatch.step, {n} envs (checks + autoreset)", rate(batch(cfg, n), n, s)))
    rows.append(("SB3 VecEnv adapter, 64 envs (info dicts)", rate(sb3_vec(cfg, 64), 64, s)))
    rows.append(("gymnasium VectorEnv, 64 envs", rate(gym_vec(cfg, 64), 64, s)))
    rows.append(("market path + table only (per env-step of an episode)", rate(market_only(cfg), T, s)))
    rows.append(("random numbers only (path_noise, per env-step)", rate(noise_only(cfg), T, s)))
    plain = rows[0][1]
    for name, r in rows: print(f"  {name:58s} {r:14,.0f}   x{r / plain:8.1f} plain")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
