"Constraint costs (CMDP) and action projection: cost math on scripted steps, zero hard-limit breaches, env checkers."
import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from credit_rl.envs.constraints import (ConstraintCosts, ConstraintLimits, ProjectedActions, hard_limit_violations,
                                        project_discrete_target)
from credit_rl.envs.spread import CreditSpreadConfig, CreditSpreadEnv


class ScriptedBook(gym.Env):
    "A multi-instrument book whose returns and weights are scripted: exercises the info protocol of ConstraintCosts."
    sectors = ("financials", "financials", "utilities")
    ratings = ("A", "BBB", "BBB")

    def __init__(self, returns, weights, durations):
        self.returns, self.weights, self.durations = returns, np.asarray(weights, float), np.asarray(durations, float)
        self.observation_space = spaces.Box(-1, 1, (2,), np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(2, np.float32), dict(weights=np.zeros(3), spread_durations_years=self.durations[0])

    def step(self, action):
        r, w, d = self.returns[self.t], self.weights[self.t], self.durations[self.t]
        self.t += 1
        done = self.t == len(self.returns)
        return np.zeros(2, np.float32), r, False, done, dict(weights=w, spread_durations_years=d)


def test_costs_on_scripted_steps():
    returns = [0.01, -0.025, -0.012, 0.001, -0.004]
    weights = [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.9, 0.3, 0.2], [0.1, 0.1, 0.0], [-0.4, 0.0, 0.2]]
    durations = [[5.0, 7.0, 10.0]] * 5
    lim = ConstraintLimits(var_loss_limit=0.005, max_drawdown=0.02, spread_duration_band_years=(0.0, 7.0),
                           max_gross_leverage=1.0, max_sector_hhi=0.5, max_rating_share=0.6)
    env = ConstraintCosts(ScriptedBook(returns, weights, durations), lim)
    assert env.cost_names == ("var", "drawdown", "duration", "leverage", "sector_hhi", "rating_share")
    obs, _ = env.reset()
    got = [env.step(0) for _ in returns]
    costs = [g[4]["constraint_costs"] for g in got]
    # equity 1.01, 0.98475, 0.97293, 0.97390, 0.97001; peak 1.01
    eq = np.cumprod(1 + np.array(returns)); dd = 1 - eq / np.maximum.accumulate(np.maximum(eq, 1.0))
    np.testing.assert_allclose([g[4]["drawdown"] for g in got], dd, rtol=0, atol=1e-12)
    np.testing.assert_allclose([c["var"] for c in costs], [0, 0.020, 0.007, 0, 0], atol=1e-12)
    # drawdown 0, 0.025, 0.0367, 0.0357, 0.0396: crosses 2 % on day 2, new depth on days 3 and 5, day 4 recovers
    np.testing.assert_allclose(dd, [0, 0.025, 0.036700, 0.035737, 0.039594], atol=1e-6)
    np.testing.assert_allclose([c["drawdown"] for c in costs], [0, dd[1] - 0.02, dd[2] - dd[1], 0, dd[4] - dd[2]], atol=1e-12)
    assert sum(c["drawdown"] for c in costs) == pytest.approx(dd.max() - 0.02, abs=1e-12)
    # duration 2.5+2.1+2.0 = 6.6 inside; day 3: 4.5+2.1+2 = 8.6 -> 1.6 above; day 5: -2+0+2 = 0 inside
    np.testing.assert_allclose([c["duration"] for c in costs], [0, 0, 1.6, 0, 0], atol=1e-12)
    np.testing.assert_allclose([c["leverage"] for c in costs], [0, 0, 0.4, 0, 0], atol=1e-12)
    # sector shares day 1: fin 0.8, util 0.2 -> HHI 0.68; day 4: fin 1.0 -> 1.0; day 5: fin 0.4/0.6, util 0.2/0.6
    np.testing.assert_allclose([c["sector_hhi"] for c in costs],
                               [0.18, 0.18, (1.2 / 1.4) ** 2 + (0.2 / 1.4) ** 2 - 0.5, 0.5, (2 / 3) ** 2 + (1 / 3) ** 2 - 0.5], atol=1e-12)
    # rating shares day 1: BBB 0.5 -> 0; day 3: A 0.9/1.4; day 4: A 0.5 BBB 0.5; day 5: A 0.4/0.6
    np.testing.assert_allclose([c["rating_share"] for c in costs], [0, 0, 0.9 / 1.4 - 0.6, 0, 0.4 / 0.6 - 0.6], atol=1e-12)
    # the observation carries drawdown, gross leverage and net spread duration / 10 years
    obs = got[2][0]
    np.testing.assert_allclose(obs[-3:], [dd[2], 1.4, 0.86], rtol=1e-6)


def test_costs_switch_off_and_base_env_unchanged():
    lim = ConstraintLimits(var_loss_limit=None, max_drawdown=None, max_sector_hhi=None)
    env = ConstraintCosts(ScriptedBook([0.0], [[1.0, 0, 0]], [[5.0, 5.0, 5.0]]), lim)
    assert env.cost_names == ("duration", "leverage", "rating_share")
    plain, wrapped = CreditSpreadEnv(), ConstraintCosts(CreditSpreadEnv())
    plain.reset(seed=9); wrapped.reset(seed=9)
    for a in np.random.default_rng(0).integers(0, 3, 100):
        p, w = plain.step(int(a)), wrapped.step(int(a))
        assert p[1] == w[1] and np.array_equal(p[0], w[0][:6])
        assert "constraint_costs" not in p[4]


def test_single_bond_costs_match_a_replay():
    "CreditSpreadEnv: duration cost of a short = |w|·D(t) − 2 years; VaR cost from the reward."
    env = ConstraintCosts(CreditSpreadEnv())
    env.reset(seed=4)
    base = env.unwrapped
    for t in range(1, 30):
        _, r, _, _, info = env.step(0)                 # short 1x: −D(t) years, below the −2 year floor
        assert info["spread_duration_years"] == pytest.approx(-base.spread_duration(t))
        assert info["constraint_costs"]["duration"] == pytest.approx(base.spread_duration(t) - 2.0)
        assert info["constraint_costs"]["var"] == pytest.approx(max(0.0, -r - 0.003))


@pytest.mark.parametrize("positions", [(-2.0, -1.0, 0.0, 1.0, 2.0), (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5), (-1.0, 0.0, 1.0)])
def test_projection_gives_zero_hard_limit_breaches(positions):
    lim = ConstraintLimits()
    raw = {"n": 0}
    for project in (False, True):
        env = CreditSpreadEnv(CreditSpreadConfig(positions=positions, episode_days=126))
        env = ConstraintCosts(ProjectedActions(env, lim) if project else env, lim)
        env.action_space.seed(1)
        breaches, projected = 0, 0
        for ep in range(4):
            env.reset(seed=100 + ep); done = False
            while not done:
                a = env.action_space.sample()
                _, _, term, trunc, info = env.step(a); done = term or trunc
                breaches += any(hard_limit_violations(info, lim).values())
                projected += info.get("action_projected", False)
        if project:
            assert breaches == 0
            assert projected >= raw["n"] > 0          # every raw breach was an action that got projected
        else:
            raw["n"] = breaches
    assert raw["n"] > 50                              # random policies do breach without the projection


def test_projection_keeps_the_sampled_action_for_the_agent():
    "The wrapper executes the projected target but the caller keeps (and SB3 stores) the sampled action."
    env = ProjectedActions(CreditSpreadEnv(CreditSpreadConfig(positions=(-2.0, 0.0, 2.0))))
    env.reset(seed=0)
    action = 2
    _, _, _, _, info = env.step(action)
    assert action == 2 and info["executed_action"] == 1 and info["action_projected"]
    assert info["position"] == 0.0       # +2 is above the 1x cap; 0 is the nearest feasible target of {−2, 0, 2}


class WeightBox(gym.Env):
    "One instrument whose Box action is the target weight (decimal of capital)."
    def __init__(self):
        self.observation_space = spaces.Box(-1, 1, (1,), np.float32)
        self.action_space = spaces.Box(-3, 3, (1,), np.float32)
    def spread_duration(self, t): return 6.0
    def reset(self, *, seed=None, options=None): return np.zeros(1, np.float32), {"position": 0.0}
    def step(self, action):
        return np.zeros(1, np.float32), 0.0, False, False, {"position": float(action[0])}


def test_box_projection_clips_to_the_feasible_interval():
    lim = ConstraintLimits(spread_duration_band_years=(-3.0, 4.5))
    env = ConstraintCosts(ProjectedActions(WeightBox(), lim), lim)
    env.reset()
    for a, expected in [(2.5, 0.75), (-2.5, -0.5), (0.3, 0.3)]:
        info = env.step(np.array([a], np.float32))[4]
        assert info["position"] == pytest.approx(expected)
        assert not any(hard_limit_violations(info, lim).values())


def test_project_discrete_target_without_feasible_choice():
    lim = ConstraintLimits(spread_duration_band_years=(4.0, 8.0))       # 0 is infeasible, so is -1
    assert project_discrete_target(np.array([-1.0, 0.0, 1.0]), 0, lim, 6.5) == 2
    assert project_discrete_target(np.array([-1.0, 0.0, 0.5]), 0, lim, 6.5) == 2   # none feasible: least band excess


def test_env_checkers_pass_on_wrapped_env():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env
    env = ConstraintCosts(ProjectedActions(CreditSpreadEnv()))
    check_env(env.unwrapped, skip_render_check=True)
    check_env(env, skip_render_check=True)
    sb3_check_env(ConstraintCosts(ProjectedActions(CreditSpreadEnv())), warn=True)


def test_cross_asset_exposures_match_the_env():
    "On CrossAssetEnv the wrapper's gross leverage (legs-weighted) equals the env's own, and the checkers pass."
    from gymnasium.utils.env_checker import check_env
    from credit_rl.envs.cross_asset import CrossAssetEnv
    raw, wrapped = CrossAssetEnv(), ConstraintCosts(CrossAssetEnv())
    raw.reset(seed=3); wrapped.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(40):
        a = rng.uniform(-1, 1, 8).astype(np.float32)
        ri, wi = raw.step(a)[4], wrapped.step(a)[4]
        assert wi["gross_leverage"] == pytest.approx(ri["gross_leverage"], rel=1e-6)
        assert set(wi["constraint_costs"]) == {"var", "drawdown", "duration", "leverage", "sector_hhi", "rating_share"}
        assert all(v >= 0 for v in wi["constraint_costs"].values())
    check_env(ConstraintCosts(CrossAssetEnv()), skip_render_check=True)
