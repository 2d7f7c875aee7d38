"""Integration tests of CreditSpreadEnv v0 and its market: registry, env checkers, path identity with the
simulator, reward accounting, no look-ahead, an SB3 smoke run, and (slow, with the shared data) calibration bands."""
import math
import warnings

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import credit_rl.envs  # noqa: F401  (registers credit_rl/CreditSpread-v0)
from credit_rl.envs.spread import (WARMUP_DAYS, CreditSpreadConfig, CreditSpreadEnv, passive_long_policy,
                                   rollout)
from credit_rl.market import SpreadProcessParams, simulate_spread_paths

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
