"PPO-Lagrangian: the multiplier dynamics, the default budgets bind, costs reach the buffer, and a constrained run beats PPO on cost."
import numpy as np
import pytest

from credit_rl.agents import EVAL_SEED_BASE, PPOConfig
from credit_rl.envs.constraints import ConstraintLimits, cvar_excess_budget
from credit_rl.envs.spread import CreditSpreadConfig, passive_long_policy
from credit_rl.lagrangian import (DEFAULT_COST_LIMITS, Lagrange, TrainLagrangianParams, evaluate_constraints,
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
