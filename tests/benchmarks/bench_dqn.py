"""Benchmark of DQN training throughput on CreditSpreadEnv, all measured in one run.

Prints training throughput in env-steps per second (one env-step = one day of one environment, gradient steps
included) for the same DQN hyper-parameters (SB3 defaults: batch 32, one gradient step every 4 vector steps,
Adam 1e-4; learning_starts and buffer as given) and the same number of environments:
  * SB3's default set-up: `DQN` on a `DummyVecEnv` of plain `CreditSpreadEnv`s (Monitor-wrapped, make_vec_env);
  * `UpgradedDQN` with all four upgrades (double, dueling, prioritized, n_steps=3) on the batched numba env
    (`CreditSpreadSB3VecEnv` + `VecMonitor`) -- the project's set-up;
and, to split the difference into its causes, SB3's `DQN` on the batched env, `UpgradedDQN` on the `DummyVecEnv`,
both set-ups on the batched env with 8x the environments at the same replay ratio (gradient steps per env-step),
and `UpgradedDQN` with one upgrade at a time. Ratios are against SB3's default set-up (first row).
Then the replay cost alone: microseconds per `sample(32)` (+ `update_priorities` for the prioritized buffer) from a
full 1M-transition buffer, for SB3's ReplayBuffer, SB3's NStepReplayBuffer (n=3) and PrioritizedReplayBuffer (n=3).

Timings are CPU time of this process (time.process_time; torch and numba on one thread) so that other processes on
the shared machine do not inflate them; wall time is printed beside. Each training figure is the best of --repeats.
Run: .venv/bin/python tests/benchmarks/bench_dqn.py [--steps 40000] [--n-envs 8] [--repeats 2]
Not collected by pytest (benchmarks print figures, they never assert timings).
"""
import argparse
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch as th  # noqa: E402
from gymnasium import spaces  # noqa: E402
from stable_baselines3 import DQN  # noqa: E402
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.vec_env import VecMonitor  # noqa: E402

from credit_rl.agents.dqn import PrioritizedReplayBuffer, UpgradedDQN  # noqa: E402
from credit_rl.envs.spread import CreditSpreadEnv  # noqa: E402
from credit_rl.envs.spread_vec import CreditSpreadSB3VecEnv  # noqa: E402

th.set_num_threads(1)


def dummy_env(n):
    return make_vec_env(lambda: CreditSpreadEnv(), n_envs=n, seed=0)


def batched_env(n):
    return VecMonitor(CreditSpreadSB3VecEnv(n, step_infos=False))


ALL = dict(double=True, dueling=True, prioritized=True, n_steps=3)
OFF = dict(double=False, dueling=False, prioritized=False, n_steps=1)


def build(algo, env, buffer_size, learning_starts, flags=ALL, **kw):
    kw = dict(buffer_size=buffer_size, learning_starts=learning_starts, seed=0, device="cpu", verbose=0, **kw)
    if algo == "upgraded": return UpgradedDQN("MlpPolicy", env, **flags, **kw)
    return DQN("MlpPolicy", env, **kw)


def throughput(algo, env_kind, n_envs, steps, buffer_size, learning_starts, repeats, **kw):
    "Best (CPU env-steps/s, wall env-steps/s) over `repeats` fresh trainings of `steps` env-steps."
    best = (0.0, 0.0)
    for _ in range(repeats):
        env = dummy_env(n_envs) if env_kind == "dummy" else batched_env(n_envs)
        model = build(algo, env, buffer_size, learning_starts, **kw)
        c0, w0 = time.process_time(), time.perf_counter()
        model.learn(steps)
        c, w = time.process_time() - c0, time.perf_counter() - w0
        best = max(best, (model.num_timesteps / c, model.num_timesteps / w))
        env.close()
    return best


def sample_cost_us(buf_cls, n=1_000_000, n_envs=8, batch=32, reps=3000, **kw):
    "Microseconds per sample(batch) (+ update_priorities for the prioritized buffer) from a full buffer of n transitions."
    obs, act = spaces.Box(-10, 10, (6,), np.float32), spaces.Discrete(3)
    buf = buf_cls(n, obs, act, "cpu", n_envs=n_envs, **kw)
    g = np.random.default_rng(0)
    buf.rewards[:] = g.normal(size=buf.rewards.shape)
    buf.dones[::252] = 1.0
    buf.pos, buf.full = 0, True
    if isinstance(buf, PrioritizedReplayBuffer): buf.tree.update(np.arange(n), g.random(n) + 0.01)
    np.random.seed(0)
    c0 = time.process_time()
    for _ in range(reps):
        s = buf.sample(batch)
        if isinstance(buf, PrioritizedReplayBuffer): buf.update_priorities(s.leaves, g.random(batch))
    return 1e6 * (time.process_time() - c0) / reps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40_000, help="env-steps of training per measurement")
    ap.add_argument("--n-envs", type=int, default=8)
    ap.add_argument("--buffer-size", type=int, default=1_000_000)
    ap.add_argument("--learning-starts", type=int, default=1_000)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, torch {th.__version__}, {a.n_envs} envs, {a.steps:,} env-steps, "
          f"buffer {a.buffer_size:,}, learning_starts {a.learning_starts:,}, best of {a.repeats}")
    build("upgraded", batched_env(2), 1000, 10).learn(200)                 # compile numba kernels outside the timing
    build("sb3", dummy_env(2), 1000, 10).learn(200)
    n, big = a.n_envs, 8 * a.n_envs
    rows = [(f"SB3 DQN, DummyVecEnv of {n} plain envs (SB3 default set-up)", "sb3", "dummy", n, {}),
            (f"UpgradedDQN (all 4 upgrades), batched numba env, {n} envs", "upgraded", "batched", n, {}),
            (f"SB3 DQN, batched numba env, {n} envs (env gain alone)", "sb3", "batched", n, {}),
            (f"UpgradedDQN (all 4 upgrades), DummyVecEnv, {n} envs (upgrade cost)", "upgraded", "dummy", n, {}),
            (f"SB3 DQN, batched, {big} envs, same replay ratio", "sb3", "batched", big, dict(train_freq=1, gradient_steps=2)),
            (f"UpgradedDQN (all 4), batched, {big} envs, same replay ratio", "upgraded", "batched", big, dict(train_freq=1, gradient_steps=2))]
    rows += [(f"UpgradedDQN, only {k}{'=3' if k == 'n_steps' else ''}, batched, {n} envs", "upgraded", "batched", n,
              dict(flags={**OFF, k: ALL[k]})) for k in ALL]
    print(f"replay ratio: one gradient step (batch 32) per {4 * n} env-steps in every row "
          f"(train_freq=4 vector steps of {n} envs; {big} envs: 2 gradient steps per vector step)")
    print(f"\n{'set-up':68s} {'CPU steps/s':>12s} {'wall steps/s':>13s} {'ratio':>7s}")
    base = None
    for label, algo, env_kind, n_envs, kw in rows:
        cpu, wall = throughput(algo, env_kind, n_envs, a.steps, a.buffer_size, a.learning_starts, a.repeats, **kw)
        base = base or cpu
        print(f"{label:68s} {cpu:12,.0f} {wall:13,.0f} {cpu / base:6.2f}x", flush=True)
    print("\nreplay sample(32) from a full 1M-transition buffer (8 envs), CPU microseconds per batch:")
    for label, cls, kw in [("SB3 ReplayBuffer", ReplayBuffer, {}), ("SB3 NStepReplayBuffer, n=3", NStepReplayBuffer, dict(n_steps=3)),
                           ("PrioritizedReplayBuffer, n=3 (+ update_priorities)", PrioritizedReplayBuffer, dict(n_steps=3))]:
        print(f"  {label:52s} {sample_cost_us(cls, **kw):8.1f} us")


if __name__ == "__main__":
    main()
