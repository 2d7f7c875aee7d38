"""Tests of LiquidityEnv and its batched twin: Almgren-Chriss reproduction in the linear setting (exact deterministic
part, exact per-path noise decomposition, Monte-Carlo mean and variance), batch-vs-single identity, cost accounting,
informed flow, bad input, env checkers, SB3 adapter."""
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credit_rl.config import ParamsError, from_dict
from credit_rl.envs.liquidity import (INFO_NAMES, S_MID, S_QUOTE_MULT, S_RESP, S_STRESS, LIQUIDITY_ENV_ID, LiquidityBatch, LiquidityConfig, LiquidityEnv,
                                      LiquiditySB3VecEnv, ac_holdings, ac_policy, liquidity_aware_policy, rollout,
                                      schedule_policy, twap_policy)
from credit_rl.references import ac_cost_moments

AC = LiquidityConfig.almgren_chriss_example()
AC_TAU, AC_SIGMA, AC_ETA, AC_GAMMA, AC_EPS = 1.0, 0.95, 2.5e-6, 2.5e-7, 0.0625


def ac_moments(holdings):
    return ac_cost_moments(holdings, AC_TAU, AC_SIGMA, AC_ETA, AC_GAMMA, AC_EPS)


def schedule_actions(holdings):
    "Per-step actions (fraction of what is left) that follow `holdings` exactly when fills are full."
    x = np.asarray(holdings, float)
    return np.where(x[:-1] > 0, 1 - x[1:] / np.where(x[:-1] > 0, x[:-1], 1), 1.0)


# ---------------------------------------------------------------- Almgren-Chriss in the linear setting

@pytest.mark.parametrize("lam, expected_e_usd", [(0.0, 662_500.0), (1e-6, 911_227.0), (2e-6, 1_140_715.0)])
def test_linear_setting_deterministic_cost_is_ac_expected_cost(lam, expected_e_usd):
    "sigma = 0: the realised implementation shortfall equals AC's E (which includes eps * X = 62.5k) to 1e-12."
    env = LiquidityEnv(LiquidityConfig.almgren_chriss_example(sigma_daily=0.0))
    policy = twap_policy(AC) if lam == 0 else ac_policy(AC, lam)
    df = rollout(env, policy, seed=3)
    e, _ = ac_moments(ac_holdings(AC, lam))
    assert df.cost_usd.sum() == pytest.approx(e, rel=1e-12)
    assert df.cost_usd.sum() == pytest.approx(expected_e_usd, abs=1.0)
    np.testing.assert_allclose(np.r_[1e6, df.inventory.to_numpy()], ac_holdings(AC, lam), rtol=1e-12, atol=1e-6)


def test_all_in_first_step_costs_2_5625m():
    env = LiquidityEnv(AC)
    env.reset(seed=0)
    _, _, term, _, info = env.step(np.array([1.0], np.float32))
    assert term and info["cost_usd"] == 2_562_500.0 and info["risk_penalty_usd"] == 0.0


@pytest.mark.parametrize("lam", [0.0, 1e-6])
def test_linear_setting_cost_minus_e_is_exactly_the_ac_noise_term(lam):
    "Per path: cost - E = -sum_k sigma sqrt(tau) xi_k x_k (AC eq. 15) to rounding; the reward sums to -(cost + lam sigma^2 tau sum x^2)/(X S0)."
    e, v = ac_moments(ac_holdings(AC, lam))
    env = LiquidityEnv(AC.__class__(**{**AC.__dict__, "risk_aversion_per_usd": lam}))
    for seed in range(20):
        df = rollout(env, schedule_policy(ac_holdings(AC, lam)), seed=seed)
        noise_term = -(df.noise_usd * df.inventory).sum()
        assert df.cost_usd.sum() - e == pytest.approx(noise_term, abs=1e-6 * e)
        risk = lam * AC_SIGMA**2 * AC_TAU * (df.inventory**2).sum()
        assert df.reward.sum() == pytest.approx(-(df.cost_usd.sum() + risk) / 50e6, rel=1e-12)


@pytest.mark.parametrize("lam", [0.0, 1e-6, 2e-6])
def test_linear_setting_monte_carlo_mean_and_variance_match_ac(lam):
    "200,000 batched paths: mean cost within 4 s.e. of E, variance within 4 s.e. of Var (s.e. of a normal variance)."
    n_paths = 200_000
    x = ac_holdings(AC, lam)
    e, v = ac_moments(x)
    batch = LiquidityBatch(n_paths, AC)
    batch.reset(seeds=1_000)
    total = np.zeros(n_paths)
    for a in schedule_actions(x):
        batch.step(np.full(n_paths, a), autoreset=False)
        total += batch.infos[:, INFO_NAMES.index("cost_usd")]
    assert batch.terminated.all()
    se_mean, se_var = math.sqrt(v / n_paths), v * math.sqrt(2 / (n_paths - 1))
    assert abs(total.mean() - e) < 4 * se_mean, (total.mean(), e, se_mean)
    assert abs(total.var(ddof=1) - v) < 4 * se_var, (total.var(ddof=1), v, se_var)


def test_objective_ordering_twap_vs_ac_at_lambda_1e6():
    "E + lam Var: TWAP 1.7455M vs AC 1.275M (calibration.md 5), by formula and by the env's mean episode reward."
    lam = 1e-6
    obj = {}
    for name, x in [("twap", ac_holdings(AC, 0.0)), ("ac", ac_holdings(AC, lam))]:
        e, v = ac_moments(x)
        obj[name] = e + lam * v
        batch = LiquidityBatch(20_000, AC)
        batch.reset(seeds=7)
        ret = np.zeros(20_000)
        for a in schedule_actions(x):
            batch.step(np.full(20_000, a), autoreset=False)
            ret += batch.rewards
        # E[sum of rewards] = -(E + lam Var) / (X S0): the risk term is deterministic given the schedule
        assert -ret.mean() * 50e6 == pytest.approx(obj[name], rel=0.01)
    assert obj["twap"] == pytest.approx(1_745_500, abs=100) and obj["ac"] == pytest.approx(1_275_000, rel=5e-4)


# ---------------------------------------------------------------- batched twin

CONFIGS = [LiquidityConfig(), LiquidityConfig(side="buy", n_steps=7), AC,
           LiquidityConfig(dealer_response_mean=1.0, toxicity_jump_prob=0.5, n_steps=3)]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["sqrt_sell", "sqrt_buy", "linear_ac", "full_fill_toxic"])
def test_batch_env_k_is_bitwise_the_single_env_in_batches_of_1_and_64(cfg):
    "float64 rewards/infos and float32 observations identical (==) across episodes and autoresets."
    base, k, n_steps = 500, 17, 60
    rng = np.random.default_rng(1)
    actions = rng.uniform(0, 1, (n_steps, 64))
    actions[rng.uniform(size=actions.shape) < 0.1] = 1.0
    big, one = LiquidityBatch(64, cfg), LiquidityBatch(1, cfg)
    big.reset(seeds=base)
    one.reset(seeds=[base + k])
    env = LiquidityEnv(cfg)
    obs, _ = env.reset(seed=base + k)
    assert (obs == big.obs[k]).all()
    for t in range(n_steps):
        big.step(actions[t])
        one.step(actions[t, k:k + 1])
        o, r, term, trunc, info = env.step(actions[t, k:k + 1])
        assert r == big.rewards[k] == one.rewards[0]
        assert (env._batch.infos[0] == big.infos[k]).all() and (one.infos[0] == big.infos[k]).all()
        assert term == big.terminated[k] and not trunc
        if term:
            assert (o == big.final_obs[k]).all()
            o, _ = env.reset()
        assert (o == big.obs[k]).all() and (one.obs[0] == big.obs[k]).all()
    assert big.episodes[k] >= 1     # the comparison crossed at least one autoreset


def test_vecenv_matches_batch_and_sb3_conventions():
    venv = LiquiditySB3VecEnv(8, LiquidityConfig(n_steps=4), seed=3)
    batch = LiquidityBatch(8, LiquidityConfig(n_steps=4))
    np.testing.assert_array_equal(venv.reset(), batch.reset(seeds=3))
    for t in range(9):
        a = np.full((8, 1), 0.3, np.float32)
        obs, rew, done, infos = venv.step(a)
        batch.step(a)
        np.testing.assert_array_equal(obs, batch.obs)
        np.testing.assert_array_equal(rew, batch.rewards.astype(np.float32))
        if t % 4 == 3:
            assert done.all() and all("terminal_observation" in i and i["terminal_observation"][0] == 0 for i in infos)
        else:
            assert not done.any()
    assert venv.get_attr("n_steps") == [4] * 8 and venv.env_is_wrapped(gym.Wrapper) == [False] * 8


def test_sb3_ppo_smoke_on_vecenv():
    from stable_baselines3 import PPO
    model = PPO("MlpPolicy", LiquiditySB3VecEnv(4, seed=0), n_steps=32, batch_size=32, n_epochs=1, seed=0)
    model.learn(total_timesteps=128)
    action, _ = model.predict(np.ones(6, np.float32), deterministic=True)
    assert action.shape == (1,) and 0 <= action[0] <= 1


# ---------------------------------------------------------------- gymnasium contract

def test_registered_and_make_with_config_dict():
    assert LIQUIDITY_ENV_ID in gym.registry
    env = gym.make(LIQUIDITY_ENV_ID, config={"n_steps": 3, "side": "buy"})
    env.reset(seed=0)
    done, n = False, 0
    while not done:
        _, _, term, trunc, _ = env.step(np.array([0.2], np.float32))
        done, n = term or trunc, n + 1
    assert n == 3


def test_gymnasium_and_sb3_checkers():
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*symmetric and normalized Box action space.*")
        for cfg in (LiquidityConfig(), AC):
            gym_check_env(LiquidityEnv(cfg), skip_render_check=True)
            sb3_check_env(LiquidityEnv(cfg), warn=True)


def test_reset_with_seed_is_deterministic_and_unseeded_resets_follow_the_first_seed():
    def episodes(env, first_seed):
        out = []
        for i in range(3):
            df = rollout(env, lambda o: np.array([0.3]), seed=first_seed if i == 0 else None)
            out.append(df.drop(columns="step").to_numpy())
        return out
    a, b = episodes(LiquidityEnv(), 42), episodes(LiquidityEnv(), 42)
    for x, y in zip(a, b): np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], a[1])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1, 1.0001, [0.1, 0.2], "x"])
def test_bad_actions_raise_value_error(bad):
    env = LiquidityEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(bad)


@pytest.mark.parametrize("overrides, field", [({"daily_volume_usd": -1e6}, "daily_volume_usd"), ({"n_steps": 0}, "n_steps"),
                                              ({"step_days": 0.0}, "step_days"), ({"side": "short"}, "side"),
                                              ({"quantity": 0.0}, "quantity"), ({"dealer_response_mean": 0.0}, "dealer_response_mean"),
                                              ({"sigma_daily": float("inf")}, "sigma_daily"), ({"rating": "Z"}, "rating")])
def test_invalid_configs_name_the_field(overrides, field):
    with pytest.raises(ParamsError, match=field):
        LiquidityConfig(**overrides)
    with pytest.raises(ParamsError, match=field):
        from_dict(LiquidityConfig, overrides)


# ---------------------------------------------------------------- cost model properties

config_strategy = st.builds(
    LiquidityConfig, side=st.sampled_from(["sell", "buy"]), quantity=st.floats(1, 1e7), price0_usd=st.floats(0.5, 5e3),
    n_steps=st.integers(1, 30), step_days=st.floats(0.05, 5), sigma_daily=st.floats(0, 0.2),
    impact_model=st.sampled_from(["sqrt", "linear"]), linear_eps_usd=st.floats(0, 1), linear_eta=st.floats(0, 1e-3),
    linear_gamma=st.floats(0, 1e-4), half_spread_bp=st.floats(0, 500), impact_coef=st.floats(0, 3),
    daily_volume_usd=st.floats(1e3, 1e10), depth_usd=st.floats(1e3, 1e9), liquidity_log_sd=st.floats(0, 3),
    volume_log_noise=st.floats(0, 3), dealer_response_mean=st.floats(0.01, 1), toxicity_jump_prob=st.floats(0, 1),
    toxicity_jump_mean=st.floats(0, 10), toxicity_leak=st.floats(0, 5), toxicity_drift_sd=st.floats(0, 3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=config_strategy, actions=st.lists(st.floats(0, 1), min_size=30, max_size=30), seed=st.integers(0, 2**63))
def test_random_configs_and_actions_stay_finite_and_account_exactly(cfg, actions, seed):
    "No NaN/inf; inventory falls to exactly 0 by the horizon; sum of step costs = implementation shortfall vs arrival."
    env = LiquidityEnv(cfg)
    obs, _ = env.reset(seed=seed)
    side = 1.0 if cfg.side == "sell" else -1.0
    proceeds, cost, inv, k = 0.0, 0.0, cfg.quantity, 0
    while True:
        obs, r, term, trunc, info = env.step([actions[k]])
        assert env.observation_space.contains(obs) and math.isfinite(r)
        assert all(math.isfinite(v) for v in info.values())
        assert 0 <= info["inventory"] <= inv and info["execution_cost_usd"] >= 0 and info["risk_penalty_usd"] >= 0
        proceeds += info["traded"] * info["fill_price"]
        cost += info["cost_usd"]
        inv, k = info["inventory"], k + 1
        if term: break
    assert inv == 0.0 and k <= cfg.n_steps
    shortfall = side * (cfg.quantity * cfg.price0_usd - proceeds)
    assert cost == pytest.approx(shortfall, rel=1e-9, abs=1e-9 * cfg.quantity * cfg.price0_usd)


def test_buy_and_sell_cost_the_same_without_noise():
    for cfg in (AC, LiquidityConfig()):
        costs = [rollout(LiquidityEnv(LiquidityConfig(**{**cfg.__dict__, "side": side, "sigma_daily": 0.0})),
                         twap_policy(cfg), seed=9).cost_usd.sum() for side in ("sell", "buy")]
        assert costs[0] == pytest.approx(costs[1], rel=1e-12)


def test_informed_flow_moves_the_mid_against_the_trader_and_costs_more():
    "Same seed and actions with and without the informed drift: the difference of mids grows against the trader."
    for side, sign in (("sell", -1), ("buy", 1)):
        mids = [rollout(LiquidityEnv(LiquidityConfig(side=side, toxicity_drift_sd=d)), lambda o: np.array([0.2]), seed=1).mid
                for d in (0.0, 0.5)]
        assert (sign * np.diff(np.r_[0.0, mids[1] - mids[0]]) > 0).all()   # every step: drift against the trader
    df = rollout(LiquidityEnv(LiquidityConfig(toxicity_drift_sd=0.5)), lambda o: np.array([0.2]), seed=1)
    assert (df.informed_usd > 0).all()                       # no dodging a drift the agent can see: the fill bears half
    np.testing.assert_array_equal(df.fill_drift_usd, 0.5 * df.informed_usd * df.traded)
    assert (rollout(LiquidityEnv(AC), twap_policy(AC), seed=1).fill_drift_usd == 0).all()   # none in the AC model
    mean_cost = {}
    for drift in (0.0, 1.0):
        cfg = LiquidityConfig(toxicity_drift_sd=drift)
        mean_cost[drift] = np.mean([rollout(LiquidityEnv(cfg), twap_policy(cfg), s).cost_usd.sum() for s in range(200)])
    assert mean_cost[1.0] > mean_cost[0.0]


def test_thin_depth_widens_the_half_spread_and_square_root_impact_scales_as_q_to_1_5():
    batch = LiquidityBatch(2000, LiquidityConfig(half_spread_model="fixed"))
    obs = batch.reset(seeds=0)
    np.testing.assert_allclose(np.log(batch.states[:, S_QUOTE_MULT]), -0.5 * obs[:, 2], rtol=1e-6, atol=1e-6)  # (D_bar/D)^0.5
    # one forced trade: execution cost / notional = Y sigma sqrt(Q/V): doubling Q costs 2**1.5 as much at equal volume
    cfg = dict(n_steps=1, dealer_response_mean=1.0, half_spread_model="fixed", half_spread_bp=0.0, liquidity_log_sd=0.0,
               volume_log_noise=0.0)
    e = [rollout(LiquidityEnv(LiquidityConfig(**cfg, quantity=q)), lambda o: np.array([1.0]), 0).execution_cost_usd.sum()
         for q in (10_000.0, 20_000.0)]
    assert e[1] / e[0] == pytest.approx(2**1.5, rel=1e-12)
    assert e[0] == pytest.approx(1.0 * 0.0016 * math.sqrt(10e6 / 3e6) * 10e6, rel=1e-12)


@pytest.mark.parametrize("rating, client, venue", [("A", "institutional", "otc_voice"), ("BB", "retail", "otc_electronic")])
def test_grid_half_spread_is_the_shared_cost_model_at_the_step_size_and_stress(rating, client, venue):
    "The half-spread paid = credit_rl.costs.client_half_spread_bp(child notional, rating, maturity, client, venue, stress) x own-depth factor."
    from credit_rl.costs import client_half_spread_bp
    cfg = LiquidityConfig(rating=rating, client=client, venue=venue, maturity_years=12.0, liquidity_log_sd=0.8)
    batch = LiquidityBatch(300, cfg)
    batch.reset(seeds=0)
    stress, mult, mid = (batch.states[:, S_STRESS].copy(), batch.states[:, S_QUOTE_MULT].copy(), batch.states[:, S_MID].copy())
    fills = batch.states[:, S_RESP].copy()
    batch.step(np.full(300, 0.3), autoreset=False)
    notional = 0.3 * fills * cfg.quantity * mid
    expected = client_half_spread_bp(notional, rating=rating, maturity_years=12.0, client=client, venue=venue,
                                     stress=stress) * mult
    np.testing.assert_allclose(batch.infos[:, INFO_NAMES.index("half_spread_bp")], expected, rtol=1e-12)
    assert (stress > 0).mean() > 0.3 and np.corrcoef(stress, batch.infos[:, INFO_NAMES.index("half_spread_bp")])[0, 1] > 0.5


def test_liquidity_aware_rule_trades_more_when_depth_is_high():
    pol = liquidity_aware_policy(LiquidityConfig())
    deep, thin = np.array([1, 1, 0.5, 0, 1, 0], np.float32), np.array([1, 1, -0.5, 0, 1, 0], np.float32)
    assert pol(deep)[0] > 0.1 > pol(thin)[0]


def test_gymnasium_vector_env_matches_batch_and_works_with_episode_statistics():
    from credit_rl.envs.liquidity import LiquidityVectorEnv
    cfg = LiquidityConfig(n_steps=3)
    venv, batch = LiquidityVectorEnv(5, cfg), LiquidityBatch(5, cfg)
    o, _ = venv.reset(seed=11)
    np.testing.assert_array_equal(o, batch.reset(seeds=11))
    rng = np.random.default_rng(0)
    for t in range(7):
        a = rng.uniform(0, 1, (5, 1)).astype(np.float32)
        o, r, term, trunc, infos = venv.step(a)
        batch.step(a)
        np.testing.assert_array_equal(o, batch.obs)
        np.testing.assert_array_equal(r, batch.rewards)
        np.testing.assert_array_equal(infos["cost_usd"], batch.infos[:, INFO_NAMES.index("cost_usd")])
        if term.any():
            for i in np.flatnonzero(term): np.testing.assert_array_equal(infos["final_obs"][i], batch.final_obs[i])
    stats = gym.wrappers.vector.RecordEpisodeStatistics(LiquidityVectorEnv(2, cfg))
    stats.reset(seed=0)
    for _ in range(3): *_, infos = stats.step(np.full((2, 1), 0.5, np.float32))
    assert infos["_episode"].all() and (infos["episode"]["l"] == 3).all()
