"Constraint costs (CMDP) and action projection: cost math on scripted steps, zero hard-limit breaches (single bond and CrossAssetEnv, random limits and actions), projection idempotent and leaving feasible books alone, infeasible limits named, env checkers."
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


# ---------------------------------------------------------------- CrossAssetEnv: projection of a multi-instrument book

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credit_rl.envs.constraints import book_meets_limits, cross_asset_book, project_book

XLIM = ConstraintLimits(max_gross_leverage=2.0, max_sector_hhi=0.5, max_rating_share=0.5)
action8 = st.lists(st.floats(-1, 1, allow_nan=False, width=32), min_size=8, max_size=8).map(lambda a: np.array(a, np.float32))


def _xlimits():
    return st.builds(ConstraintLimits, var_loss_limit=st.none(), max_drawdown=st.none(),
                     spread_duration_band_years=st.one_of(st.none(), st.tuples(st.floats(-10, 0), st.floats(0.5, 15))),
                     max_gross_leverage=st.one_of(st.none(), st.floats(0.2, 5)), max_abs_position=st.one_of(st.none(), st.floats(0.1, 3)),
                     max_sector_hhi=st.one_of(st.none(), st.floats(0.34, 1)), max_rating_share=st.one_of(st.none(), st.floats(0.34, 1)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lim=_xlimits(), actions=st.lists(action8, min_size=1, max_size=12), seed=st.integers(0, 1000))
def test_cross_asset_random_actions_never_breach_through_the_projection(lim, actions, seed):
    from credit_rl.envs.cross_asset import CrossAssetEnv
    env = ConstraintCosts(ProjectedActions(CrossAssetEnv(episode_days=12), lim), lim)
    env.reset(seed=seed)
    for a in actions:
        a_before = a.copy()
        _, r, term, trunc, info = env.step(a)
        assert np.array_equal(a, a_before)                               # the agent's sampled action is untouched
        assert not any(hard_limit_violations(info, lim).values()), (hard_limit_violations(info, lim), info["weights"])
        assert np.isfinite(r)
        if term or trunc: break


@settings(max_examples=200, deadline=None)
@given(lim=_xlimits(), a=action8)
def test_project_book_is_feasible_idempotent_and_leaves_feasible_books_alone(lim, a):
    from credit_rl.envs.cross_asset import CrossAssetEnv
    d, sec, rat, legs = cross_asset_book(CrossAssetEnv(episode_days=2))
    w = a.astype(float) * np.array([3.0, 1.5, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0])
    p = project_book(w, d, legs, sec, rat, lim)
    assert book_meets_limits(p, d, legs, sec, rat, lim)
    assert np.array_equal(project_book(p, d, legs, sec, rat, lim), p)            # idempotent
    assert (np.abs(p) <= np.abs(w) + 1e-15).all() and (p * w >= 0).all()        # only scales down, never flips a sign
    if book_meets_limits(w, d, legs, sec, rat, lim): assert np.array_equal(p, w)


def test_cross_asset_wrapper_projection_is_idempotent_and_counts_breaches():
    from credit_rl.envs.cross_asset import CrossAssetEnv
    raw = ConstraintCosts(CrossAssetEnv(episode_days=100), XLIM)
    proj = ProjectedActions(CrossAssetEnv(episode_days=100), XLIM)
    rng = np.random.default_rng(0)
    raw.reset(seed=1); proj.reset(seed=1)
    breaches, projected = 0, 0
    for _ in range(100):
        a = rng.uniform(-1, 1, 8).astype(np.float32)
        _, _, term, trunc, info = raw.step(a)
        breaches += any(hard_limit_violations(info, XLIM).values())
        if term or trunc: raw.reset(seed=2)                                      # a random 4x book can hit the stop-loss
        once = proj._project(a)
        assert np.array_equal(proj._project(once), once)                        # idempotent through the env's mapping
        projected += once is not a
        small = (a * 0.01).astype(np.float32)                                    # a tiny book meets every limit here?
        if proj._meets(small * proj._maxw): assert proj._project(small) is small
    assert breaches > 80 and projected == breaches                              # every raw breach is projected, nothing else


@pytest.mark.parametrize("lim, field", [(ConstraintLimits(), "max_sector_hhi"),
                                        (ConstraintLimits(max_sector_hhi=None, max_rating_share=0.2), "max_rating_share"),
                                        (ConstraintLimits(max_sector_hhi=None, spread_duration_band_years=(1.0, 6.0)), "spread_duration_band_years")])
def test_infeasible_limits_raise_naming_the_field(lim, field):
    from credit_rl.envs.cross_asset import CrossAssetEnv
    with pytest.raises(ValueError, match=field): ProjectedActions(CrossAssetEnv(episode_days=5), lim)


def test_cross_asset_discrete_templates_are_projected_to_a_feasible_template():
    from credit_rl.envs.cross_asset import CrossAssetEnv
    lim = ConstraintLimits(max_gross_leverage=2.0, max_sector_hhi=0.5, max_rating_share=None)   # XLIM's 50 % rating cap leaves only "flat"
    env = ConstraintCosts(ProjectedActions(CrossAssetEnv(episode_days=30, action_mode="discrete"), lim), lim)
    env.reset(seed=0)
    executed = []
    for k in list(range(9)) * 3:
        *_, info = env.step(k)
        assert not any(hard_limit_violations(info, lim).values())
        executed.append(info["executed_action"])
    # infeasible: 4 long LQD (8.5 y > 8 y), 7 the ETF trade (2.9x gross), 8 short CDX HY (-4 y < -2 y): the nearest feasible is flat
    assert executed == [0, 1, 2, 3, 0, 5, 6, 0, 0] * 3


def test_env_checkers_pass_on_projected_cross_asset_env():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env
    from credit_rl.envs.cross_asset import CrossAssetEnv
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode in ("continuous", "discrete"):
            check_env(ConstraintCosts(ProjectedActions(CrossAssetEnv(episode_days=20, action_mode=mode), XLIM), XLIM), skip_render_check=True)
            sb3_check_env(ConstraintCosts(ProjectedActions(CrossAssetEnv(episode_days=20, action_mode=mode), XLIM), XLIM))
