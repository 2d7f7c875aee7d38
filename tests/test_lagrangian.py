"PPO-Lagrangian: the multiplier dynamics, the default budgets bind, costs reach the buffer, and a constrained run beats PPO on cost."
import numpy as np
import pytest

from credit_rl.agents.ppo import EVAL_SEED_BASE, PPOConfig
from credit_rl.envs.constraints import ConstraintLimits, cvar_excess_budget
from credit_rl.envs.spread import CreditSpreadConfig, passive_long_policy
from credit_rl.agents.lagrangian import (DEFAULT_COST_LIMITS, Lagrange, TrainLagrangianParams, evaluate_constraints,
                                  make_constrained_env, train_ppo_lagrangian)
from credit_rl.risk import historical_cvar


def test_multiplier_rises_under_breach_and_falls_to_zero_when_met():
    for optimizer in ("adam", "sgd"):
        lag = Lagrange({"var": 0.02, "drawdown": 0.005}, lr=0.05, optimizer=optimizer)
        path = [lag.update({"var": 0.05, "drawdown": 0.001}) for _ in range(20)]
        assert path[-1]["var"] > path[0]["var"] > 0          # breached: rises
        assert all(p["drawdown"] == 0.0 for p in path)      # met from the start: stays at 0, never negative
        for _ in range(200): last = lag.update({"var": 0.0, "drawdown": 0.0})
        assert last == {"var": 0.0, "drawdown": 0.0}


def test_default_budgets_bind_for_the_passive_long():
    "Evidence that the defaults bind: the passive long's mean episode costs exceed both budgets, its CVaR-95 the 0.5 % cap."
    cfg = TrainLagrangianParams(eval_episodes=30)
    env = make_constrained_env(cfg)
    ev = evaluate_constraints(passive_long_policy(env), cfg)
    assert ev["cost_var"].mean() > 1.5 * DEFAULT_COST_LIMITS["var"]
    assert ev["cost_drawdown"].mean() > 1.5 * DEFAULT_COST_LIMITS["drawdown"]
    assert (ev["max_drawdown"] > 0.03).mean() > 0.3
    rets = []
    for seed in range(EVAL_SEED_BASE, EVAL_SEED_BASE + 30):
        e = make_constrained_env(cfg); obs, _ = e.reset(seed=seed); done = False
        while not done:
            obs, r, term, trunc, _ = e.step(2); rets.append(r); done = term or trunc
    assert historical_cvar(np.array(rets), 0.95) > 0.005


def test_costs_reach_the_rollout_buffer():
    "After a rollout the buffer's costs equal the per-step costs the env reports when its actions are replayed."
    cfg = TrainLagrangianParams(total_timesteps=256, ppo=PPOConfig(n_envs=2, n_steps=256, batch_size=128, n_epochs=1, net_arch=[16]))
    model = train_ppo_lagrangian(cfg, log_every=10_000)
    buf = model.rollout_buffer
    assert buf.costs.shape == (256, 2, 2) and model.cost_names == ("var", "drawdown")
    actions = buf.actions.reshape(2, 256)          # PPO's train flattened (n_steps, n_envs) to env-major order
    for i in range(2):                             # make_vec_env seeds env i with seed·1000 + i on the first reset
        env = make_constrained_env(cfg); env.reset(seed=i)
        replay = [env.step(int(a))[4]["constraint_costs"] for a in actions[i, :251]]
        np.testing.assert_allclose(buf.costs[:251, i, 0], [c["var"] for c in replay], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(buf.costs[:251, i, 1], [c["drawdown"] for c in replay], rtol=1e-6, atol=1e-9)
    assert buf.costs[..., 0].sum() > 0             # the first random policy does breach the VaR line
    assert len(model.ep_cost_buffer) == 2          # two 252-day episodes finished (one per env)
    assert set(model.ep_cost_buffer[0]) == {"var", "drawdown", "duration", "leverage"}


TIGHT = ConstraintLimits(var_loss_limit=0.001, max_drawdown=0.01)                 # binding for any long position
TIGHT_BUDGETS = {"var": cvar_excess_budget(0.001, 0.002), "drawdown": 0.002}      # CVaR-95 <= 0.2 %, E[(maxDD - 1 %)+] <= 0.2 %


def _train_and_evaluate(cost_limits, budget, seed=0):
    "Frictionless long-biased grid (0, 0.5, 1): trading costs do not drown the risk signal in a short run."
    ppo = PPOConfig(n_envs=4, n_steps=512, batch_size=256, n_epochs=5, net_arch=[64, 64])
    env = CreditSpreadConfig(positions=(0.0, 0.5, 1.0), initial_position=1.0, include_costs=False)
    cfg = TrainLagrangianParams(seed=seed, total_timesteps=budget, eval_episodes=20, ppo=ppo, env=env, limits=TIGHT,
                                cost_limits=cost_limits, lagrange_lr=0.5)
    model = train_ppo_lagrangian(cfg, log_every=budget // 3)
    return model, evaluate_constraints(lambda o: int(model.predict(o, deterministic=True)[0]), cfg)


@pytest.mark.slow
def test_constrained_agent_has_lower_constraint_cost_than_ppo():
    "Same seed and budget: PPO-Lagrangian ends with lower VaR and drawdown costs than unconstrained PPO."
    budget = 30_000
    _, plain = _train_and_evaluate({}, budget)
    model, lagr = _train_and_evaluate(TIGHT_BUDGETS, budget)
    print("unconstrained:\n", plain.drop(columns="eval_seed").mean().to_string())
    print("lagrangian:\n", lagr.drop(columns="eval_seed").mean().to_string(), "\nmultipliers", model.lagrange.multipliers)
    assert plain["cost_var"].mean() > TIGHT_BUDGETS["var"]          # the budget binds for the unconstrained agent
    assert lagr["cost_var"].mean() < 0.5 * plain["cost_var"].mean()
    assert lagr["cost_drawdown"].mean() < 0.5 * plain["cost_drawdown"].mean()
    assert lagr["var99"].mean() < plain["var99"].mean()


def test_training_with_projection_has_no_hard_limit_breaches():
    "project_actions=True on a levered grid: the trained agent's held-out episodes never breach a hard limit."
    env = CreditSpreadConfig(positions=(-2.0, -1.0, 0.0, 1.0, 2.0), episode_days=63)
    cfg = TrainLagrangianParams(total_timesteps=1024, eval_episodes=3, env=env, project_actions=True,
                                ppo=PPOConfig(n_envs=2, n_steps=256, batch_size=256, n_epochs=1, net_arch=[16]))
    model = train_ppo_lagrangian(cfg, log_every=10_000)
    ev = evaluate_constraints(lambda o: int(model.predict(o, deterministic=False)[0]), cfg)
    assert ev["hard_limit_breach_days"].sum() == 0 and ev["cost_duration"].sum() == 0
    unprojected = evaluate_constraints(lambda o: 0, TrainLagrangianParams(eval_episodes=3, env=env))   # always −2x
    assert (unprojected["hard_limit_breach_days"] == 63).all()


# --- the constrained chapter (credit_rl.studies.constrained: ConstrainedChapterParams, run_chapter_agent, evaluate_daily, seed_metrics)

from pathlib import Path

import pandas as pd
import torch

from credit_rl.studies.constrained import (CHAPTER_BUDGETS, CHAPTER_ENV, CHAPTER_LIMITS, ConstrainedChapterParams, chapter_config,
                                           evaluate_daily, paired_vs_baseline, run_chapter, run_chapter_agent, seed_metrics)

TINY_PPO = PPOConfig(n_envs=2, n_steps=256, batch_size=256, n_epochs=1, net_arch=[16])


def _tiny(**kw):
    return ConstrainedChapterParams(**(dict(seeds=[0, 1], total_timesteps=1024, eval_episodes=3, ppo=TINY_PPO, n_jobs=1) | kw))


def test_multiplier_rises_in_training_when_cost_exceeds_budget_and_stays_zero_when_met():
    "PPOLagrangian's λ after each rollout: budget 0 (always breached) -> strictly rising; budget 1e6 (always met) -> 0."
    env = CHAPTER_ENV
    tight = train_ppo_lagrangian(TrainLagrangianParams(total_timesteps=2048, env=env, limits=CHAPTER_LIMITS, ppo=TINY_PPO,
                                                       cost_limits={"var": 0.0, "drawdown": 0.0}, lagrange_lr=0.1), log_every=10**9)
    lam = pd.DataFrame(tight.constraint_log)["lambda_drawdown"].to_numpy()
    assert len(lam) == 4 and np.all(np.diff(lam) > 0) and lam[0] > 0
    assert (pd.DataFrame(tight.constraint_log)["ep_cost_drawdown"].dropna() > 0).all()   # the measured cost that drives it
    loose = train_ppo_lagrangian(TrainLagrangianParams(total_timesteps=1024, env=env, limits=CHAPTER_LIMITS, ppo=TINY_PPO,
                                                       cost_limits={"var": 1e6, "drawdown": 1e6}), log_every=10**9)
    assert loose.lagrange.multipliers == {"var": 0.0, "drawdown": 0.0}


def test_chapter_limits_bind_for_3x_and_hold_for_1x():
    "The chapter's mandate on its 100 held-out years: holding 3x breaks both budgets and the hard limits; 1x meets them all."
    cfg = TrainLagrangianParams(env=CHAPTER_ENV, limits=CHAPTER_LIMITS, eval_episodes=100)
    top, one = [seed_metrics(evaluate_daily(lambda o, k=k: np.full(len(o), k), cfg), CHAPTER_LIMITS, CHAPTER_BUDGETS)
                for k in (6, 2)]
    assert top["mean_cost_var"] > 2 * CHAPTER_BUDGETS["var"] and top["mean_cost_drawdown"] > 2 * CHAPTER_BUDGETS["drawdown"]
    assert top["viol_leverage"] == 1.0 and top["viol_duration"] == 1.0
    assert one["mean_cost_var"] < CHAPTER_BUDGETS["var"] and one["mean_cost_drawdown"] < CHAPTER_BUDGETS["drawdown"]
    assert one["viol_leverage"] == 0.0 and one["viol_duration"] == 0.0
    assert top["annual_return"] > one["annual_return"] > 0          # leverage pays: a return-maximiser wants 3x


def test_projected_chapter_run_has_zero_hard_violations():
    "A projected chapter run (untrained, exploring policy: it asks for 3x often) breaches no hard limit on held-out days; unprojected PPO does."
    p = _tiny()
    proj = run_chapter_agent(p, "projected", 0)["daily"]
    plain = run_chapter_agent(p, "ppo", 0)["daily"]
    hard = [c for c in proj if c.startswith("hard_")]
    assert set(hard) == {"hard_position", "hard_leverage", "hard_duration"}
    assert proj[hard].to_numpy().sum() == 0 and proj["position"].max() <= CHAPTER_LIMITS.max_gross_leverage
    assert plain[hard].to_numpy().sum() > 0                         # the same budget without projection does breach


def test_chapter_runs_are_deterministic_for_a_seed_and_independent_of_n_jobs():
    p = _tiny(agents=["ppo", "lagrangian"], n_jobs=2)
    runs = run_chapter(p)
    again = run_chapter_agent(p, "lagrangian", 1)
    pd.testing.assert_frame_equal(again["daily"], runs[3]["daily"])
    pd.testing.assert_frame_equal(again["log"], runs[3]["log"])
    assert again["multipliers"] == runs[3]["multipliers"]
    assert not runs[2]["log"]["lambda_var"].equals(runs[3]["log"]["lambda_var"])   # another seed trains differently


def test_evaluate_daily_matches_single_episode_evaluation_for_a_trained_policy():
    cfg = chapter_config(_tiny(), "lagrangian", 0)
    model = train_ppo_lagrangian(cfg, log_every=10**9)
    d = evaluate_daily(lambda o: model.predict(o, deterministic=True)[0], cfg)
    e = evaluate_constraints(lambda o: int(model.predict(o, deterministic=True)[0]), cfg)
    np.testing.assert_allclose(d.groupby("eval_seed")["cost_var"].sum(), e["cost_var"], rtol=1e-12)
    np.testing.assert_allclose(d.groupby("eval_seed")["return"].apply(lambda r: np.prod(1 + r) - 1), e["total_return"], rtol=1e-12)


def test_seed_metrics_by_hand():
    "Two 4-day years: returns, VaR-line breaches, drawdown breaches, budgets, turnover and hard-limit days counted by hand."
    lim = ConstraintLimits(var_loss_limit=0.01, max_drawdown=0.02)
    r = [0.0, -0.015, 0.0, 0.005,  0.01, -0.012, -0.012, 0.0]       # year 1: DD 1.5 %; year 2: DD 1 - 0.988^2 = 2.39 %
    daily = pd.DataFrame(dict(eval_seed=[1] * 4 + [2] * 4, day=list(range(4)) * 2, ret=r, position=[1, 1, 2, 2, 1, 1, 1, 1],
                              cost_var=[max(0, -x - 0.01) for x in r], cost_drawdown=[0.0] * 8,
                              hard_leverage=[False, False, True, True] + [False] * 4)).rename(columns={"ret": "return"})
    m = seed_metrics(daily, lim, {"var": 0.0045, "drawdown": 0.0})
    assert m["viol_var"] == 3 / 8 and m["viol_leverage"] == 2 / 8 and m["viol_drawdown"] == 0.5
    assert m["over_budget_var"] == 0.5 and m["over_budget_drawdown"] == 0.0   # VaR cost 0.005 (year 1) and 0.004 (year 2)
    assert m["turnover"] == (2 + 1) / 2                                     # year 1: 0 -> 1 -> 2; year 2: 0 -> 1
    np.testing.assert_allclose(m["mean_cost_var"], 0.0045)
    np.testing.assert_allclose(m["max_drawdown"], (0.015 + 1 - 0.988 ** 2) / 2)
    np.testing.assert_allclose(m["annual_return"], np.mean([(0.985 * 1.005) ** 63 - 1, (1.01 * 0.988 ** 2) ** 63 - 1]))


def test_t_interval_and_paired_difference():
    from credit_rl.stats import t_interval
    ci = t_interval([0.1, 0.2, 0.3, 0.4, 0.5]); m, hi = ci["mean"], ci["hi"]
    assert np.isclose(m, 0.3) and np.isclose(hi - m, 2.776445 * np.std([0.1, 0.2, 0.3, 0.4, 0.5], ddof=1) / np.sqrt(5), rtol=1e-5)
    ps = pd.DataFrame(dict(agent=["ppo"] * 3 + ["lagrangian"] * 3, seed=[0, 1, 2] * 2, annual_return=[0.05, 0.04, 0.06, 0.03, 0.02, 0.04]))
    d = paired_vs_baseline(ps, ["annual_return"]).iloc[0]
    assert np.isclose(d["mean"], -0.02) and np.isclose(d["lo"], -0.02) and d["seeds"] == 3   # paired: zero spread of differences


def test_chapter_params_files_validate_and_keep_the_same_budget():
    from credit_rl.book.runs import load_spec
    root = Path(__file__).resolve().parents[1] / "params"
    specs = {prof: load_spec(root / "constrained.yaml", prof) for prof in ("smoke", "default", "full")}
    for prof, spec in specs.items():
        p = ConstrainedChapterParams(**{k: v for k, v in spec.params.items() if k in ("agents", "seeds", "total_timesteps")})
        assert spec.template == "constrained" and "ppo" in p.agents
        assert spec.params["env"]["market_model"] == "synthetic" and spec.params["env"]["bond_rating"] == "BB"
    assert len(specs["default"].params["seeds"]) >= 3 and len(specs["full"].params["seeds"]) >= 5
    assert specs["default"].params["require_binding"] and specs["full"].params["require_binding"]
    with pytest.raises(ValueError, match="ppo"):
        ConstrainedChapterParams(agents=["lagrangian"])


def test_ppo_lagrangian_resumes_exactly_from_a_checkpoint(tmp_path):
    "Kill after 1,024 of 2,048 steps (checkpoints after it deleted), resume: same weights, multipliers and log as one run."
    cfg = chapter_config(_tiny(total_timesteps=2048), "lagrangian", 0)
    full = train_ppo_lagrangian(cfg, log_every=10**9, checkpoint_dir=tmp_path / "a", checkpoint_every=512)
    ckpts = sorted((tmp_path / "a").glob("checkpoint_*.pkl"))
    for c in ckpts:
        if int(c.stem.split("_")[1]) > 1024: c.unlink()
    resumed = train_ppo_lagrangian(cfg, log_every=10**9, checkpoint_dir=tmp_path / "a", checkpoint_every=512)
    assert resumed.num_timesteps == full.num_timesteps == 2048
    for (k, a), (_, b) in zip(full.policy.state_dict().items(), resumed.policy.state_dict().items()):
        assert torch.equal(a, b), k
    for (k, a), (_, b) in zip(full.cost_critic.state_dict().items(), resumed.cost_critic.state_dict().items()):
        assert torch.equal(a, b), k
    assert full.lagrange.multipliers == resumed.lagrange.multipliers
    pd.testing.assert_frame_equal(pd.DataFrame(full.constraint_log), pd.DataFrame(resumed.constraint_log))
