"""Benchmark of CreditSpreadEnv and its batched twin CreditSpreadVectorEnv: env-steps per second, all measured in one run.

Prints env-steps/second (one env-step = one day of one environment) for:
  * the plain single env (`CreditSpreadEnv.step`, random actions, reset on episode end);
  * SB3 `DummyVecEnv` of 64 plain envs;
  * the raw batched kernel (`vec_step_nb`, autoreset included) with 64 and 1,024 envs;
  * the same through the SB3 `VecEnv` adapter (`CreditSpreadSB3VecEnv`), with its per-step info dicts and without
    (`step_infos=False`), and through the gymnasium vector env (`CreditSpreadVectorEnv.step`, infos as arrays);
  * a numba kernel that only draws the same random numbers as the env kernel (3 normals + 1 uniform + 1 exponential
    per env-step, plus the reseeding and 20-day warm-up draws of each new episode): the practical limit;
  * for the explanation, the twin's market alone (its draws and its vectorised market loop, no book, no resets);
  * the calibrated market (market_model='synthetic', regime features on): the plain env, and the batched twin with 64
    envs through `CreditSpreadVectorEnv._advance` (the `path_step_nb` kernel plus the autoresets, which rebuild each
    ended episode's tables with `synthetic_path` + `path_observations` in Python). One timed call of the twin is a
    whole episode (episode_days steps of all envs, ending in the rebuild of all their tables), so the per-episode
    table build is included in the figure.
and the ratios: raw kernel (1,024 envs) / plain env (target >= 100) and raw kernel / random-numbers-only (target >= 0.5),
batched synthetic twin / plain synthetic env.

Timings are CPU time of this process (time.process_time) on one thread, so that other processes on a shared machine
do not inflate them; each figure is the best of --repeats runs of about --seconds each.
Run: .venv/bin/python tests/benchmarks/bench_spread_env.py [--seconds 1.0] [--repeats 3]
Not collected by pytest (a script: benchmarks print figures, they never assert timings).
"""
import argparse
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402

from credit_rl.envs.spread import CreditSpreadConfig, CreditSpreadEnv, env_consts  # noqa: E402
from credit_rl.envs.rng import (next_double, next_episode_seed, seed_pcg64, standard_exponential,  # noqa: E402
                                standard_normal)
from credit_rl.envs.spread_vec import (CreditSpreadSB3VecEnv, CreditSpreadVectorEnv, _move_markets, alloc_vec,  # noqa: E402
                                       draw_day_nb, simd_kernel, vec_reset_nb, vec_step_nb)
from credit_rl.market.bond import kernel_params  # noqa: E402
from credit_rl.envs.spread import WARMUP_DAYS  # noqa: E402


@simd_kernel                                  # compiled like the batched env kernel (vec_step_nb)
def random_numbers_only_nb(n_days, rng, episode_rng, t, episode_days, sink):
    "Draw, for each env-day, what the env kernel draws (5 numbers; a new episode: reseed + 3 + 20 x 5); sum into sink."
    for _ in range(n_days):
        for i in range(rng.shape[0]):
            acc = standard_normal(rng, i) + standard_normal(rng, i) + standard_normal(rng, i)
            acc += next_double(rng, i) + standard_exponential(rng, i)
            t[i] += 1
            if t[i] >= episode_days:
                t[i] = 0
                seed_pcg64(rng, i, next_episode_seed(episode_rng, i), 0)
                acc += standard_normal(rng, i) + standard_normal(rng, i) + standard_normal(rng, i)
                for _ in range(WARMUP_DAYS):
                    acc += standard_normal(rng, i) + standard_normal(rng, i) + standard_normal(rng, i)
                    acc += next_double(rng, i) + standard_exponential(rng, i)
            sink[i] += acc


@simd_kernel                                  # compiled like vec_step_nb
def market_only_nb(n_days, vs, kp):
    "The twin's market alone: each day, draw every env's variates (`draw_day_nb`) and move every market (the SIMD loop)."
    for _ in range(n_days):
        draw_day_nb(vs)
        _move_markets(vs, kp)


def rate(step_fn, env_steps_per_call, seconds, repeats):
    "Best env-steps per CPU second of `step_fn` over `repeats` runs of about `seconds` each."
    step_fn()                                                              # warm (compile or load the cache)
    best = 0.0
    for _ in range(repeats):
        calls, c0 = 0, time.process_time()
        while True:
            step_fn(); calls += 1
            dt = time.process_time() - c0
            if dt >= seconds: break
        best = max(best, calls * env_steps_per_call / dt)
    return best


def plain_env(cfg, seed=0):
    env, rng = CreditSpreadEnv(cfg), np.random.default_rng(seed)
    env.reset(seed=seed)
    actions = iter(rng.integers(0, len(cfg.positions), 10**7).tolist())
    def step():
        _, _, term, trunc, _ = env.step(next(actions))
        if term or trunc: env.reset()
    return step


def dummy_vec(cfg, n):
    from stable_baselines3.common.vec_env import DummyVecEnv
    venv = DummyVecEnv([lambda: CreditSpreadEnv(cfg)] * n)
    venv.seed(0); venv.reset()
    acts = np.random.default_rng(0).integers(0, len(cfg.positions), (64, n))
    k = iter(range(10**9))
    return lambda: venv.step(acts[next(k) % 64])


def raw_kernel(cfg, n):
    vs, out = alloc_vec(n)
    kp, ec, positions = kernel_params(cfg.market), env_consts(cfg), np.asarray(cfg.positions, dtype=float)
    vec_reset_nb(np.arange(n, dtype=np.int64), vs, kp, ec, out.obs)
    acts = np.random.default_rng(0).integers(0, len(cfg.positions), (64, n))
    k = iter(range(10**9))
    return lambda: vec_step_nb(acts[next(k) % 64], positions, vs, kp, ec, out)


def sb3_adapter(cfg, n, step_infos):
    venv = CreditSpreadSB3VecEnv(n, cfg, step_infos=step_infos)
    venv.seed(0); venv.reset()
    acts = np.random.default_rng(0).integers(0, len(cfg.positions), (64, n))
    k = iter(range(10**9))
    return lambda: venv.step(acts[next(k) % 64])


def gym_vector(cfg, n):
    venv = CreditSpreadVectorEnv(n, cfg)
    venv.reset(seed=0)
    acts = np.random.default_rng(0).integers(0, len(cfg.positions), (64, n))
    k = iter(range(10**9))
    return lambda: venv.step(acts[next(k) % 64])


def rng_only(cfg, n, days_per_call=16):
    rng, episode_rng = np.zeros((n, 4), np.uint64), np.zeros((n, 4), np.uint64)
    for i in range(n): seed_pcg64(episode_rng, i, i, -1); seed_pcg64(rng, i, i, 0)
    t, sink = np.random.default_rng(0).integers(0, cfg.episode_days, n), np.zeros(n)
    return lambda: random_numbers_only_nb(days_per_call, rng, episode_rng, t, cfg.episode_days, sink)


def synthetic_twin(cfg, n):
    "One call = one whole episode of n envs (kernel steps, then the autoreset rebuilding every env's tables)."
    venv = CreditSpreadVectorEnv(n, cfg)
    venv.reset(seed=0)
    acts = np.random.default_rng(0).integers(0, len(cfg.positions), (cfg.episode_days, n))
    def run():
        for a in acts: venv._advance(a)
    return run


def market_only(cfg, n, days_per_call=16):
    vs, out = alloc_vec(n)
    kp, ec = kernel_params(cfg.market), env_consts(cfg)
    vec_reset_nb(np.arange(n, dtype=np.int64), vs, kp, ec, out.obs)
    return lambda: market_only_nb(days_per_call, vs, kp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per timing run")
    ap.add_argument("--repeats", type=int, default=3, help="timing runs per figure (the best is kept)")
    a = ap.parse_args()
    cfg = CreditSpreadConfig()                                             # defaults: 252-day episodes, 3 positions
    print(f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
          f"{os.cpu_count()} cores, {platform.machine()}; CPU time, one thread, best of {a.repeats}")
    rows = {}
    def measure(name, fn, per_call):
        rows[name] = rate(fn, per_call, a.seconds, a.repeats)
        print(f"{name:<46s} {rows[name]:>14,.0f} env-steps/s  ({1e9 / rows[name]:>9,.1f} ns per env-step)", flush=True)
    measure("plain CreditSpreadEnv", plain_env(cfg), 1)
    measure("SB3 DummyVecEnv, 64 plain envs", dummy_vec(cfg, 64), 64)
    for n in (64, 1024):
        measure(f"raw batched kernel, {n:,} envs", raw_kernel(cfg, n), n)
    for n in (64, 1024):
        measure(f"SB3 VecEnv adapter, {n:,} envs (info dicts)", sb3_adapter(cfg, n, True), n)
        measure(f"SB3 VecEnv adapter, {n:,} envs (step_infos=False)", sb3_adapter(cfg, n, False), n)
    measure("gymnasium CreditSpreadVectorEnv, 1,024 envs", gym_vector(cfg, 1024), 1024)
    measure("random numbers only, 1,024 envs", rng_only(cfg, 1024), 16 * 1024)
    measure("market only (draws + SIMD market loop), 1,024", market_only(cfg, 1024), 16 * 1024)
    syn = CreditSpreadConfig(market_model="synthetic")                   # calibrated market, regime features, 252-day episodes
    measure("plain CreditSpreadEnv, synthetic market", plain_env(syn), 1)
    measure("batched synthetic twin, 64 envs (tables incl.)", synthetic_twin(syn, 64), 64 * syn.episode_days)
    raw, plain, limit = rows["raw batched kernel, 1,024 envs"], rows["plain CreditSpreadEnv"], rows["random numbers only, 1,024 envs"]
    market = rows["market only (draws + SIMD market loop), 1,024"]
    print(f"\nraw kernel (1,024 envs) / plain env, per step, one core: {raw / plain:8.1f}x   (target >= 100x)")
    print(f"raw kernel (64 envs)    / plain env, per step, one core: {rows['raw batched kernel, 64 envs'] / plain:8.1f}x")
    print(f"raw kernel (1,024 envs) / random-numbers-only limit:     {raw / limit:8.2f}    (target >= 0.5)")
    print(f"market only             / random-numbers-only limit:     {market / limit:8.2f}    "
          f"(the market's own arithmetic: {1e9 / market - 1e9 / limit:.0f} ns per env-step beyond its draws)")
    print(f"batched synthetic twin (64 envs) / plain synthetic env: "
          f"{rows['batched synthetic twin, 64 envs (tables incl.)'] / rows['plain CreditSpreadEnv, synthetic market']:8.1f}x"
          f"   (both build an episode's tables in Python at each reset)")


if __name__ == "__main__":
    main()
