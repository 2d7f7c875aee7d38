"""Benchmark: PPO and DQN on the discretisable spread problem (GridCreditSpreadEnv) against its DP optimum, one run.

Prints, all measured in this run (same machine load for both sides):
  1. training throughput in env-steps per CPU second (one env-step = one day of one env; gradient steps included):
     PPO and DQN on the batched numba twin (`GridCreditSpreadSB3VecEnv`, the project's settings `GridPPOConfig()` and
     `GRID_DQN_DEFAULTS`) vs SB3's default set-up (SB3 `PPO` / `DQN` with their default hyper-parameters on a
     `DummyVecEnv` of 8 plain `GridCreditSpreadEnv`s);
  2. the training CPU time to reach 0.95 of the DP score (exact score of the greedy policy, evaluated every
     --eval-every CPU s, evaluation excluded) for our PPO vs SB3's default PPO set-up, and the ratio;
  3. the exact score reached within the --budget (60 CPU s) for PPO and DQN.

Budget = CPU seconds of this process (time.process_time) with torch and numba on one thread: stricter than 60 s of
wall clock on an idle 2-core machine. Wall time and the 1-minute load average are printed beside.
The 5-seed figures with confidence intervals come from the research chapter's full profile
(`credit-rl run params/agents_dp.yaml --profile full`); this script runs --seeds (default 1) for a quick check.
Run: .venv/bin/python tests/benchmarks/bench_agents_grid.py [--seeds 1] [--budget 60] [--sb3-budget 180] [--throughput-s 10]
Not collected by pytest (benchmarks print figures, they never assert timings).
"""
import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from stable_baselines3 import DQN  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

from credit_rl.agents.dp import GRID_DQN_DEFAULTS, GridPPOConfig, make_grid_dqn, make_grid_ppo, make_sb3_default_ppo  # noqa: E402
from credit_rl.studies.agents_dp import AgentsDPParams, run_agents_dp, summarise_scores  # noqa: E402
from credit_rl.envs.spread_grid import GridCreditSpreadEnv, GridCreditSpreadSB3VecEnv, GridSpreadConfig  # noqa: E402

torch.set_num_threads(1)


def throughput(model, seconds):
    "Env-steps per CPU second of `model.learn` over about `seconds` CPU s (after a short warm-up)."
    model.learn(2_000)                                               # numba compile, buffers
    n0, t0, w0 = model.num_timesteps, time.process_time(), time.time()
    chunk = 20_000
    while time.process_time() - t0 < seconds:
        model.learn(chunk, reset_num_timesteps=False)
    cpu, wall = time.process_time() - t0, time.time() - w0
    return (model.num_timesteps - n0) / cpu, (model.num_timesteps - n0) / wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1", help="comma-separated training seeds")
    ap.add_argument("--budget", type=float, default=60.0, help="CPU s per agent and seed")
    ap.add_argument("--sb3-budget", type=float, default=180.0, help="CPU s of SB3's default PPO set-up")
    ap.add_argument("--throughput-s", type=float, default=10.0, help="CPU s per throughput measurement")
    ap.add_argument("--eval-every", type=float, default=5.0, help="CPU s between exact evaluations")
    a = ap.parse_args()
    grid, seeds = GridSpreadConfig(), [int(s) for s in a.seeds.split(",")]
    print(f"load average at start: {os.getloadavg()}; torch threads {torch.get_num_threads()}")

    print("\n1. Training throughput (env-steps per CPU s; per wall s beside)")
    sb3_dqn = DQN("MlpPolicy", make_vec_env(lambda: GridCreditSpreadEnv(grid), n_envs=8, seed=0), seed=0, device="cpu")
    sides = {"PPO, SB3 default set-up (DummyVecEnv x 8, PPO defaults)": make_sb3_default_ppo(grid, 0),
             "PPO, batched twin (GridPPOConfig())": make_grid_ppo(GridPPOConfig(), grid, 0),
             "DQN, SB3 default set-up (DummyVecEnv x 8, DQN defaults)": sb3_dqn,
             "DQN, batched twin (UpgradedDQN, GRID_DQN_DEFAULTS)": make_grid_dqn(GRID_DQN_DEFAULTS, grid, 0),
             "DQN, SB3 defaults on the batched twin x 8 (env speed alone)":
                 DQN("MlpPolicy", GridCreditSpreadSB3VecEnv(8, grid), seed=0, device="cpu")}
    tp = {}
    for name, model in sides.items():
        tp[name] = throughput(model, a.throughput_s)
        print(f"  {name:60s} {tp[name][0]:>10,.0f} /CPU s {tp[name][1]:>10,.0f} /wall s")
    names = list(tp)
    print(f"  ratio PPO batched / SB3 default: {tp[names[1]][0] / tp[names[0]][0]:.1f}x; "
          f"DQN batched / SB3 default: {tp[names[3]][0] / tp[names[2]][0]:.1f}x (our DQN replays 16x the transitions per "
          f"env-step: batch 256 every 16 env-steps vs 32 every 32); same SB3 DQN defaults, batched / DummyVecEnv: "
          f"{tp[names[4]][0] / tp[names[2]][0]:.1f}x")

    print(f"\n2-3. Exact scores within {a.budget:g} CPU s (seeds {seeds}); SB3 default PPO for {a.sb3_budget:g} CPU s")
    p = AgentsDPParams(seeds=seeds, agents=["ppo", "dqn"], budget_cpu_s=a.budget, eval_every_cpu_s=a.eval_every,
                       sb3_default_seeds=seeds, sb3_default_budget_cpu_s=a.sb3_budget, grid=grid)
    res = run_agents_dp(p, log=lambda s: print("  " + s, flush=True))
    summ = summarise_scores(res["per_seed"]).set_index("agent")
    print(summ.round(4).to_string())
    ours, ref = summ.loc["ppo", "cpu_s_to_target_mean"], summ.loc["sb3_default_ppo", "cpu_s_to_target_mean"]
    if np.isnan(ref):
        print(f"  time to 0.95: PPO batched {ours:.1f} CPU s; SB3 default never within {a.sb3_budget:g} CPU s "
              f"-> ratio > {a.sb3_budget / ours:.1f}x" if not np.isnan(ours) else "  neither reached 0.95")
    else:
        print(f"  time to 0.95: PPO batched {ours:.1f} CPU s vs SB3 default {ref:.1f} CPU s -> {ref / ours:.1f}x sooner")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
