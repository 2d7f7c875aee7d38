"""Benchmark of LiquidityEnv and its batched twin: env-steps per second, all measured in one run on one core.

Run: .venv/bin/python tests/benchmarks/bench_liquidity.py [--seconds 1.5]
Not collected by pytest (a script; benchmarks print ratios, they never assert timings)."""
import argparse
import os
import platform
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numba
import numpy as np

from credit_rl.envs.liquidity import (DRAWS_PER_STEP, LiquidityBatch, LiquidityConfig, LiquidityEnv, LiquiditySB3VecEnv,
                                      LiquidityVectorEnv, batch_step)
from credit_rl.envs.rng import _normal, _uniform, stream_key


def rate(fn, steps_per_call, seconds, reps=3):
    """env-steps per CPU-second of calling fn() repeatedly, best of `reps` runs of about `seconds / reps` each.

    CPU time of this process (time.process_time), not wall time: the machine is shared, and under load wall-clock
    rates measure the neighbours. One thread (NUMBA_NUM_THREADS=1), so CPU time = time on one core."""
    fn()
    best = 0.0
    for _ in range(reps):
        n, t0 = 0, time.process_time()
        while (elapsed := time.process_time() - t0) < seconds / reps:
            for _ in range(10): fn()
            n += 10
        best = max(best, n * steps_per_call / elapsed)
    return best


def plain_env(cfg):
    env = LiquidityEnv(cfg)
    env.reset(seed=0)
    a = np.array([0.2], np.float32)
    def fn():
        _, _, term, trunc, _ = env.step(a)
        if term or trunc: env.reset()
    return fn


def dummy_vec(cfg, n):
    from stable_baselines3.common.vec_env import DummyVecEnv
    venv = DummyVecEnv([lambda: LiquidityEnv(cfg) for _ in range(n)])
    venv.seed(0); venv.reset()
    a = np.full((n, 1), 0.2, np.float32)
    return lambda: venv.step(a)


def raw_kernel(cfg, n):
    b = LiquidityBatch(n, cfg)
    b.reset(seeds=0)
    a = np.full(n, 0.2)
    return lambda: batch_step(b.params, b.workspace_flat, *b.scratch, b.seeds, b.episodes, b.keys, a, True, b.obs,
                              b.terminated, b.final_obs)


def sb3_adapter(cfg, n):
    venv = LiquiditySB3VecEnv(n, cfg, seed=0)
    venv.reset()
    a = np.full((n, 1), 0.2, np.float32)
    return lambda: venv.step(a)


def train_vec(cfg, n):
    "credit_rl.studies.execution's training VecEnv: the SB3 adapter with info dicts only at episode ends."
    from credit_rl.studies.execution import ExecutionTrainVecEnv
    venv = ExecutionTrainVecEnv(n, cfg, seed=0)
    venv.reset()
    a = np.full((n, 1), 0.2, np.float32)
    return lambda: venv.step(a)


def gym_vector(cfg, n):
    venv = LiquidityVectorEnv(n, cfg)
    venv.reset(seed=0)
    a = np.full((n, 1), 0.2, np.float32)
    return lambda: venv.step(a)


@numba.njit(cache=True, error_model="numpy", _nrt=False)   # compiled like the env kernel's loops, so it vectorises too
def _draws_only(keys, steps, out):
    "The same random numbers per env-step as the env kernel (4 normals, 2 uniforms; same functions), summed: the practical limit."
    for i in range(keys.shape[0]):
        block = steps[i] + 1
        c = block * DRAWS_PER_STEP
        out[i] += (_normal(keys[i], c) + _normal(keys[i], c + 1) + _normal(keys[i], c + 2) + _normal(keys[i], c + 3)
                   + _uniform(keys[i], c + 4) + _uniform(keys[i], c + 5))
        steps[i] = (steps[i] + 1) % 10


def draws_only(n):
    keys = np.array([stream_key(s, 0) for s in range(n)], dtype=np.uint64)
    steps, out = np.zeros(n, np.int64), np.zeros(n)
    return lambda: _draws_only(keys, steps, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    s = ap.parse_args().seconds
    cfg = LiquidityConfig()  # credit (sqrt) model, 10 steps per episode
    print(f"LiquidityEnv benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.1f}, numba {numba.__version__}, NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}, "
          f"{s:g} CPU-s per line, default config (sqrt model, N=10 steps per episode, autoreset on)")
    res = {}
    res["plain env (1)"] = rate(plain_env(cfg), 1, s)
    res["SB3 DummyVecEnv of 64 plain envs"] = rate(dummy_vec(cfg, 64), 64, s)
    for n in (1, 64, 1024):
        res[f"raw batched kernel ({n})"] = rate(raw_kernel(cfg, n), n, s)
    res["raw batched kernel (1024), linear AC model"] = rate(raw_kernel(LiquidityConfig.almgren_chriss_example(), 1024), 1024, s)
    for n in (64, 1024):
        res[f"SB3 VecEnv adapter ({n}, info dicts)"] = rate(sb3_adapter(cfg, n), n, s)
    res["execution training VecEnv (1024, infos at episode ends)"] = rate(train_vec(cfg, 1024), 1024, s)
    for n in (64, 1024):
        res[f"gymnasium VectorEnv ({n}, info arrays)"] = rate(gym_vector(cfg, n), n, s)
    for n in (64, 1024):
        res[f"random numbers only ({n})"] = rate(draws_only(n), n, s)
    base = res["plain env (1)"]
    w = max(map(len, res)) + 1
    print(f"{'':{w}s} {'env-steps/CPU-s':>16s} {'x plain env':>12s}")
    for k, v in res.items(): print(f"{k:{w}s} {v:16,.0f} {v / base:12.1f}")
    for n in (64, 1024):
        print(f"raw kernel ({n}) / random-numbers-only limit: {res[f'raw batched kernel ({n})'] / res[f'random numbers only ({n})']:.2f}")
    print(f"SB3 adapter (1024) / raw kernel (1024): {res['SB3 VecEnv adapter (1024, info dicts)'] / res['raw batched kernel (1024)']:.2f}; "
          f"execution training VecEnv (1024) / raw kernel (1024): "
          f"{res['execution training VecEnv (1024, infos at episode ends)'] / res['raw batched kernel (1024)']:.2f}")
    print("context (not measured here): a public numpy-vectorised execution gym runs ~11M trajectory-steps/s at 1,024 envs "
          "on this machine (issue 5)")
    print(f"raw kernel (1024) / SB3 DummyVecEnv(64): {res['raw batched kernel (1024)'] / res['SB3 DummyVecEnv of 64 plain envs']:.0f}x")


if __name__ == "__main__":
    main()
