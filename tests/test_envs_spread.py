"""Integration tests of CreditSpreadEnv v0 and its market: registry, env checkers, path identity with the
simulator, reward accounting, no look-ahead, an SB3 smoke run, and (slow, with the shared data) calibration bands.
Then the calibrated markets (market_model 'synthetic' and 'real'), regime features and continuous sizing: checkers,
determinism, path identity with `simulate_market`, both no-look-ahead tests (decide t / fill t+1, and perturbing the
market after t), regime-probability ranking, cost-grid stress, real-frame fallbacks, March 2020 on the shared data,
the batched twin's refusal of modes it does not batch, and a PPO smoke run."""
import math
import warnings

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import credit_rl.envs  # noqa: F401  (registers credit_rl/CreditSpread-v0)
from credit_rl.envs.spread import (WARMUP_DAYS, CreditSpreadConfig, CreditSpreadEnv, passive_long_policy,
                                   rollout)
from credit_rl.config import ParamsError
from credit_rl.market.bond import SpreadProcessParams, simulate_spread_paths

ENV_ID = "credit_rl/CreditSpread-v0"


def test_registered_on_import_and_make_passes_config():
    assert ENV_ID in gym.registry
    env = gym.make(ENV_ID, config={"positions": [0.0, 1.0], "episode_days": 5})
    assert env.action_space.n == 2
    env.reset(seed=0)
    done, n = False, 0
    while not done:
        _, _, term, trunc, _ = env.step(1)
        done, n = term or trunc, n + 1
    assert n == 5


def test_gymnasium_and_sb3_checkers_without_warnings():
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(CreditSpreadEnv(), skip_render_check=True)
        sb3_check_env(CreditSpreadEnv(), warn=True)
        gym_check_env(gym.make(ENV_ID).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_env_path_equals_simulated_path(seed):
    env = CreditSpreadEnv(CreditSpreadConfig(episode_days=60))
    _, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rows = [(info["spread_bp"], None)]
    done = False
    while not done:
        _, _, term, trunc, i = env.step(int(rng.integers(0, 3)))
        rows.append((i["spread_bp"], i["half_spread_bp"]))
        done = term or trunc
    sim = simulate_spread_paths(env.config.market, WARMUP_DAYS + 60, n_paths=3, seed=seed)
    np.testing.assert_array_equal([r[0] for r in rows], sim["spread_bp"][0, WARMUP_DAYS:])
    np.testing.assert_array_equal([r[1] for r in rows[1:]], sim["half_spread_bp"][0, WARMUP_DAYS + 1:])


def test_unseeded_resets_are_reproducible_from_the_first_seed():
    def seeds():
        env = CreditSpreadEnv()
        env.reset(seed=99)
        out = []
        for _ in range(3):
            env.reset()
            out.append(env.market_seed)
        return out
    a, b = seeds(), seeds()
    assert a == b and len(set(a)) == 3


def test_reward_is_sum_of_parts_and_costs_follow_trades():
    env = CreditSpreadEnv()
    df = rollout(env, lambda obs: int(np.random.default_rng(int(abs(obs[0]) * 1e6)).integers(0, 3)), seed=4)
    np.testing.assert_allclose(df.reward, df.pnl_spread + df.pnl_carry + df.pnl_financing - df.cost, rtol=0, atol=1e-15)
    assert ((df.cost > 0) == (df.trade_notional != 0)).all()
    # trade notional is the change of weight times capital, filled on the step it was decided
    prev = np.r_[0.0, df.position.to_numpy()[:-1]]
    np.testing.assert_allclose(df.trade_notional, (df.position - prev) * 10e6)


def test_action_at_t_cannot_earn_the_move_to_t_plus_1():
    """Perturb the action at t: with costs off, rewards up to and including step t are unchanged."""
    cfg = CreditSpreadConfig(include_costs=False)
    base = [2] * 30
    for t in (0, 7, 20):
        alt = list(base)
        alt[t] = 0
        r = []
        for acts in (base, alt):
            env = CreditSpreadEnv(cfg)
            env.reset(seed=t)
            r.append([env.step(a)[1] for a in acts])
        assert r[0][: t + 1] == r[1][: t + 1]
        assert r[0][t + 1] != r[1][t + 1]


def test_passive_long_gets_carry_minus_financing_minus_duration_times_spread_change():
    cfg = CreditSpreadConfig(include_costs=False, initial_position=1.0, financing_spread_bp_per_yr=40.0)
    env = CreditSpreadEnv(cfg)
    df = rollout(env, passive_long_policy(env), seed=7)
    s0 = env.reset(seed=7)[1]["spread_bp"]
    s = np.r_[s0, df.spread_bp.to_numpy()] / 1e4
    dur = 6.5 * (8.0 - np.arange(len(df)) / 252) / 8.0
    expected = -dur * np.diff(s) + (s[:-1] - 40e-4) / 252
    np.testing.assert_allclose(df.reward, expected, rtol=0, atol=1e-15)
    assert (df.cost == 0).all()


def test_zero_cost_config_and_invalid_actions():
    env = CreditSpreadEnv(CreditSpreadConfig(include_costs=False))
    env.reset(seed=0)
    for a in [0, 2, 0, 1, 2]:
        assert env.step(a)[4]["cost"] == 0.0
    # zero half-spread and zero impact is also frictionless
    env = CreditSpreadEnv(CreditSpreadConfig(market=SpreadProcessParams(half_spread_bp=0.0), impact_coef=0.0))
    env.reset(seed=0)
    assert env.step(2)[4]["cost"] == 0.0
    for bad in (-1, 3, 1.5, "buy", None):
        with pytest.raises(ValueError, match="action must be an integer"):
            env.step(bad)


def test_long_only_desk():
    env = CreditSpreadEnv(CreditSpreadConfig(positions=(0.0, 1.0)))
    df = rollout(env, passive_long_policy(env), seed=3)
    assert set(df.position) == {1.0} and df.trade_notional.iloc[0] == 10e6


def test_sb3_ppo_smoke():
    from stable_baselines3 import PPO
    model = PPO("MlpPolicy", CreditSpreadEnv(CreditSpreadConfig(episode_days=32)), n_steps=64, batch_size=32,
                n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    env = CreditSpreadEnv()
    df = rollout(env, lambda obs: int(model.predict(obs, deterministic=True)[0]), seed=0)
    assert len(df) == 252 and np.isfinite(df.reward).all()


def _real_ig_weekly():
    from credit_rl.config import shared_data_dir
    d = shared_data_dir()
    if d is None or not (d / "BAMLC0A0CM.csv").is_file():
        pytest.skip("shared data (BAMLC0A0CM.csv) not available")
    df = pd.read_csv(d / "BAMLC0A0CM.csv", parse_dates=["observation_date"], index_col="observation_date")
    return df["BAMLC0A0CM"].dropna().resample("W-FRI").last().dropna() * 100.0  # percent -> bp


def _loglog_slope(level):
    "Slope of log |weekly change| on log level (volatility elasticity, unconditional)."
    d = np.diff(level)
    ok = d != 0
    return np.polyfit(np.log(level[:-1][ok]), np.log(np.abs(d[ok])), 1)[0]


def _weekly_kappa(level):
    b = np.polyfit(level[:-1], level[1:], 1)[0]
    return -math.log(b) * 52 if 0 < b < 1 else np.inf


@pytest.mark.slow
def test_real_ig_statistics_fall_inside_simulated_bands():
    """calibration.md: the real estimate must fall inside the band of the same estimate over simulated paths."""
    real = _real_ig_weekly().to_numpy()
    n_weeks = len(real)
    sim = simulate_spread_paths(SpreadProcessParams(), 5 * (n_weeks - 1), n_paths=500, seed=77)["spread_bp"][:, ::5]
    for name, stat in [("kappa", _weekly_kappa), ("mean", np.mean), ("std", np.std),
                       ("weekly change std", lambda x: np.diff(x).std()),
                       ("max", np.max), ("min", np.min), ("log-log vol slope", _loglog_slope)]:
        sims = np.array([stat(p) for p in sim])
        lo, hi = np.percentile(sims, [2.5, 97.5])
        assert lo < stat(real) < hi, f"real IG {name} {stat(real):.3f} outside simulated band [{lo:.3f}, {hi:.3f}]"


# --- the calibrated market: market_model 'synthetic' / 'real', regime features, continuous sizing (issue 4 / 5) ---
from credit_rl.market.path import BondPath  # noqa: E402
from credit_rl.envs.spread import (REGIME_OBS_NAMES, bond_consts, path_observations,  # noqa: E402
                                   prepare_frame, regime_features, regime_reference, synthetic_path)
from credit_rl.envs.spread_vec import CreditSpreadSB3VecEnv, CreditSpreadVectorEnv  # noqa: E402
from credit_rl.market.synthetic import MarketParams, simulate_market  # noqa: E402

SYN = CreditSpreadConfig(market_model="synthetic")


def _toy_frame(n=400):
    days = pd.bdate_range("2019-01-01", periods=n, name="date")
    k = np.arange(n)
    return pd.DataFrame({"ig_oas_bp": 120 + 10 * np.sin(k / 30), "vix": 18 + 5 * np.cos(k / 20)}, index=days)


@pytest.mark.parametrize("kw, frame", [
    (dict(market_model="synthetic"), False), (dict(market_model="synthetic", action_type="continuous"), False),
    (dict(market_model="synthetic", bond_rating="B", bond_sector="energy", regime_features=False), False),
    (dict(market_model="real", episode_days=100), True), (dict(action_type="continuous"), False)])
def test_calibrated_modes_pass_both_checkers_without_warnings(kw, frame):
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env
    fr = _toy_frame() if frame else None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(CreditSpreadEnv(CreditSpreadConfig(**kw), frame=fr), skip_render_check=True)
        sb3_check_env(CreditSpreadEnv(CreditSpreadConfig(**kw), frame=fr), warn=True)


def test_make_builds_the_synthetic_env_and_reset_seed_is_deterministic():
    env = gym.make(ENV_ID, config={"market_model": "synthetic", "episode_days": 30}).unwrapped
    assert env.observation_space.shape == (11,) and env.obs_names[6:] == REGIME_OBS_NAMES
    runs = []
    for _ in range(2):
        obs, info = env.reset(seed=42)
        traj = [obs]
        for a in [2, 2, 0, 1, 2] * 6:
            obs, r, term, trunc, i = env.step(a); traj.append(np.r_[obs, r, i["cost"]])
        runs.append(np.concatenate(traj))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(env.reset(seed=43)[0], env.reset(seed=42)[0])


def test_synthetic_episode_is_the_simulator_path_and_reward_is_its_parts():
    env = CreditSpreadEnv(SYN)
    obs, info = env.reset(seed=9)
    sim = simulate_market(MarketParams(), WARMUP_DAYS + 253, 1, seed=9, fields=("ig_oas_bp", "vix"))
    np.testing.assert_array_equal(env.path.index_oas_bp, sim["ig_oas_bp"][0].astype(float))
    np.testing.assert_array_equal(env.path.vix, sim["vix"][0].astype(float))
    spreads = [info["spread_bp"]]
    for a in np.random.default_rng(0).integers(0, 3, 252):
        obs, r, term, trunc, i = env.step(a)
        spreads.append(i["spread_bp"])
        assert r == pytest.approx(i["pnl_spread"] + i["pnl_carry"] + i["pnl_financing"] - i["cost"], abs=1e-15)
        assert (i["cost"] > 0) == (i["trade_notional"] != 0)
        assert 0 <= i["regime"] <= 2 and i["vix"] > 0
    np.testing.assert_array_equal(spreads, env.path.spread_bp[WARMUP_DAYS:])
    assert trunc and not term


def test_synthetic_action_at_t_cannot_earn_the_move_to_t_plus_1():
    def rewards(a5):
        env = CreditSpreadEnv(CreditSpreadConfig(market_model="synthetic", include_costs=False, initial_position=1.0))
        env.reset(seed=4)
        return [env.step(a5 if t == 5 else 2)[1] for t in range(7)]
    a, b = rewards(0), rewards(2)
    assert a[:6] == b[:6] and a[6] != b[6]


@pytest.mark.parametrize("t_cut", [WARMUP_DAYS, WARMUP_DAYS + 60, WARMUP_DAYS + 200])
def test_observations_up_to_t_do_not_change_when_the_market_after_t_changes(t_cut):
    bc, pm = bond_consts(SYN), synthetic_path(SYN, 3)
    after = np.arange(len(pm.vix)) > t_cut
    bumped = pm._replace(**{f: np.where(after, getattr(pm, f) * m, getattr(pm, f)) for f, m in
                            (("spread_bp", 1.7), ("index_oas_bp", 2.0), ("vix", 3.0), ("stress", 5.0), ("volume_usd", 0.1),
                             ("spread_vol_bp_day", 4.0))})
    rows, rows_b = path_observations(pm, SYN, bc, True), path_observations(bumped, SYN, bc, True)
    k = t_cut - WARMUP_DAYS
    np.testing.assert_array_equal(rows[:k + 1], rows_b[:k + 1])
    assert not np.allclose(rows[k + 1:], rows_b[k + 1:])                  # the test can fail: later rows do move


def test_filtered_regime_probabilities_rank_the_true_regimes_on_simulated_paths():
    ref = regime_reference(MarketParams())
    sim = simulate_market(MarketParams(), 2520, 4, seed=31337, fields=("regime", "vix"))
    probs, true = [], sim["regime"].ravel()
    for i in range(4):
        pm = BondPath(*(np.ones(2520),) * 2, sim["vix"][i].astype(float), *(np.ones(2520),) * 5, sim["regime"][i])
        probs.append(regime_features(pm, "ig", ref)[:, 2:])
    probs = np.concatenate(probs)
    p_stress = [probs[true == k, 2].mean() for k in range(3)]
    assert p_stress[2] > p_stress[1] + 0.1 > p_stress[0] + 0.2, p_stress
    assert probs[true == 0, 0].mean() > 0.3 > probs[true == 2, 0].mean()


def test_cost_grid_widens_with_the_markets_liquidity_stress():
    env = CreditSpreadEnv(SYN)
    env.reset(seed=0)
    pm = env.path
    calm, stressed = pm._replace(stress=np.zeros_like(pm.stress)), pm._replace(stress=np.ones_like(pm.stress))
    from credit_rl.envs.spread import path_fill_cost
    c0 = path_fill_cost(10e6, 30, 8.0, 6.5, calm, env._bc)
    c1 = path_fill_cost(10e6, 30, 8.0, 6.5, stressed, env._bc)
    hs_block_calm = 9.0 * 1.4 * 0.85                                      # A, 7-15y, block (costs grid)
    assert c1 - c0 == pytest.approx(hs_block_calm * 6.0 * 1e-4 * 10e6, rel=1e-12)   # block crisis multiplier 7 at stress 1


def test_continuous_sizing_and_position_limits():
    env = CreditSpreadEnv(CreditSpreadConfig(market_model="synthetic", action_type="continuous", max_abs_weight=0.5))
    env.reset(seed=0)
    for w in (0.25, -0.5, 0.0, 0.5):
        obs, r, _, _, i = env.step(np.array([w], np.float32))
        assert i["position"] == pytest.approx(w) and obs[5] == pytest.approx(w)
    for bad in (np.array([0.51]), np.array([np.nan]), np.array([np.inf]), np.array([0.1, 0.1]), "x", None):
        with pytest.raises(ValueError, match="target weight"):
            env.step(bad)
    with pytest.raises(ParamsError, match="initial_position"):
        CreditSpreadConfig(action_type="continuous", max_abs_weight=0.5, initial_position=1.0)
    # v0 market with continuous sizing: the same kernel, a float target weight
    env = CreditSpreadEnv(CreditSpreadConfig(action_type="continuous", include_costs=False, initial_position=0.5))
    obs, info = env.reset(seed=21)
    _, r, _, _, i = env.step(np.array([0.5], np.float32))
    assert r == pytest.approx(0.5 * (i["pnl_spread"] / 0.5 + i["pnl_carry"] / 0.5 + i["pnl_financing"] / 0.5))


def test_real_frame_episodes_and_fallbacks():
    fr = _toy_frame()
    fr.iloc[5, 1] = np.nan                                                # a gap: that row is dropped
    env = CreditSpreadEnv(CreditSpreadConfig(market_model="real", episode_days=100), frame=fr)
    assert len(env._frame) == 399
    obs, info = env.reset(seed=1, options={"start_row": 3})
    assert info["spread_bp"] == env._frame["spread"].iloc[3 + WARMUP_DAYS]
    assert env.reset(seed=7)[1]["start_row"] == env.reset(seed=7)[1]["start_row"]
    assert np.all(env.path.informed_share == 0.2) and np.all(env.path.regime == -1)
    np.testing.assert_allclose(env.path.volume_usd, 3e6 / (1 + env.path.stress))
    # given half-spread and volume columns replace the fallbacks
    fr2 = _toy_frame().assign(hs=4.0, vol=1e7)
    env2 = CreditSpreadEnv(CreditSpreadConfig(market_model="real", episode_days=50, real_half_spread_col="hs",
                                              real_volume_col="vol"), frame=fr2)
    env2.reset(seed=0)
    _, _, _, _, i = env2.step(2)
    assert i["half_spread_bp"] == 4.0 and np.all(env2.path.volume_usd == 1e7)
    for cfg, frame, msg in [(CreditSpreadConfig(market_model="real"), None, "needs a data frame"),
                            (CreditSpreadConfig(), fr, "takes no frame"),
                            (CreditSpreadConfig(market_model="real", real_vix_col="VIX"), fr, "real_vix_col='VIX'"),
                            (CreditSpreadConfig(market_model="real", episode_days=500), fr, "episode_days=500")]:
        with pytest.raises(ValueError, match=msg):
            CreditSpreadEnv(cfg, frame=frame)
    with pytest.raises(ValueError, match="start row 10000: allowed 0..278"):
        env.reset(options={"start_row": 10_000})
    with pytest.raises(ValueError, match="start_row"):
        env.reset(options={"start": 3})


def test_real_shared_data_march_2020_is_filtered_as_stress():
    from credit_rl.config import shared_data_dir
    if shared_data_dir() is None:
        pytest.skip("shared data folder not found")
    from credit_rl.market.data import load_shared_market
    env = CreditSpreadEnv(CreditSpreadConfig(market_model="real", episode_days=60), frame=load_shared_market()[0])
    start = int(np.searchsorted(env._frame.index, pd.Timestamp("2020-02-03"))) - WARMUP_DAYS
    obs, info = env.reset(seed=0, options={"start_row": start})
    dates = env._frame.index[start + WARMUP_DAYS:start + WARMUP_DAYS + 61]
    p_stress = pd.Series(env._rows[:, 10], index=dates)
    assert (p_stress.loc["2020-03-09":"2020-03-31"] > 0.5).all()
    assert p_stress.loc["2020-02-03":"2020-02-14"].max() < 0.5            # calm before: the filter is not stuck on stress


def test_batched_twin_rejects_the_mode_it_does_not_batch():
    """Real-data episodes need a frame: the twin (synthetic and single_bond, discrete and continuous) says so."""
    cfg = {"market_model": "real"}
    for make in (lambda: CreditSpreadVectorEnv(2, cfg), lambda: CreditSpreadSB3VecEnv(2, cfg)):
        with pytest.raises(ValueError, match="market_model='real'"):
            make()
    for cfg in ({"market_model": "synthetic"}, {"action_type": "continuous"}):
        assert CreditSpreadVectorEnv(2, cfg).num_envs == 2


def test_sb3_ppo_smoke_on_the_synthetic_market_with_continuous_sizing():
    from stable_baselines3 import PPO
    cfg = CreditSpreadConfig(market_model="synthetic", action_type="continuous", episode_days=32)
    model = PPO("MlpPolicy", CreditSpreadEnv(cfg), n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    env = CreditSpreadEnv(cfg)
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        obs, r, term, trunc, _ = env.step(np.clip(model.predict(obs, deterministic=True)[0], -1, 1))
        assert np.isfinite(obs).all() and np.isfinite(r)
        done = term or trunc
