"No look-ahead: every feature at dates <= t is unchanged when all inputs after t are replaced by noise."
import numpy as np
import pandas as pd
import pytest

from credit_rl.market import features as F

N = 900
IDX = pd.bdate_range("2015-01-01", periods=N, name="date")
CUTS = [150, 520, 700, 899 - 1]  # t positions (after the GARCH min history, around refits, near the end)


def _inputs(seed: int = 0) -> dict:
    "Synthetic market inputs on a business-day index (spreads bp, rates %, prices, volumes)."
    rng = np.random.default_rng(seed)
    spread = 400 * np.exp(np.cumsum(rng.normal(0, 0.012, N)))
    volume = rng.integers(0, 5, N) * (rng.random(N) < 0.6) * 1e5
    return dict(spread_bp=pd.Series(spread, IDX), cds_bp=pd.Series(spread - 20 + rng.normal(0, 5, N), IDX),
                equity_ret=pd.Series(rng.normal(0, 0.01, N), IDX), bid_ask_bp=pd.Series(np.abs(rng.normal(30, 8, N)), IDX),
                volume=pd.Series(volume, IDX), ret=pd.Series(rng.normal(0, 0.004, N), IDX),
                dollar_volume=pd.Series(np.abs(rng.normal(5e7, 1e7, N)), IDX),
                coupon_pct=pd.Series(5.0, IDX), price=pd.Series(95 + np.cumsum(rng.normal(0, 0.2, N)), IDX),
                ytm_years=pd.Series(np.linspace(7, 3.5, N), IDX), funding_pct=pd.Series(2 + rng.normal(0, 0.05, N), IDX),
                ust_pct=pd.Series(3 + np.cumsum(rng.normal(0, 0.03, N)), IDX))


def _perturb_after(inputs: dict, t: int, seed: int) -> dict:
    "Copy of the inputs with every value after position t replaced by a noisy value (same sign conventions)."
    rng = np.random.default_rng(seed)
    out = {}
    for k, s in inputs.items():
        v = s.to_numpy(dtype=float).copy()
        v[t + 1:] = v[t + 1:] * np.exp(rng.normal(0, 0.5, N - t - 1)) + rng.normal(0, 1.0, N - t - 1) * (k == "ret")
        if k == "volume":  # re-draw which later days trade at all
            v[t + 1:] = (rng.random(N - t - 1) < 0.5) * rng.integers(1, 9, N - t - 1) * 1e5
        out[k] = pd.Series(v, s.index)
    return out


FEATURES = {
    "spread_zscore": lambda d: F.spread_zscore(d["spread_bp"], 60),
    "rsi": lambda d: F.rsi(d["spread_bp"], 14),
    "bollinger": lambda d: F.bollinger_bands(d["spread_bp"], 20, 2.0),
    "carry": lambda d: F.carry_bp_per_year(d["coupon_pct"], d["price"], d["ytm_years"], d["funding_pct"]),
    "index_carry": lambda d: F.index_carry_bp_per_year(d["spread_bp"], d["ust_pct"], d["funding_pct"]),
    "amihud": lambda d: F.amihud_illiquidity(d["ret"], d["dollar_volume"], 21),
    "bid_ask_pctile": lambda d: F.bid_ask_percentile(d["bid_ask_bp"], 120),
    "days_since_trade": lambda d: F.days_since_last_trade(d["volume"]),
    "cds_bond_basis": lambda d: F.cds_bond_basis_bp(d["cds_bp"], d["spread_bp"]),
    "equity_credit_corr": lambda d: F.equity_credit_corr(d["equity_ret"], d["spread_bp"].diff(), 63),
    "realized_vol": lambda d: F.realized_vol(d["spread_bp"].diff(), 21),
    "garch_vol_expanding": lambda d: F.garch_vol(d["spread_bp"].diff(), refit_every=100, min_obs=300),
    "garch_vol_rolling": lambda d: F.garch_vol(d["spread_bp"].diff(), refit_every=150, min_obs=250, window=300),
    "spread_feature_frame": lambda d: F.spread_feature_frame(d["spread_bp"], z_window=60, garch_refit_every=200),
}


def _assert_past_unchanged(base, pert, t, name):
    a = np.asarray(pd.DataFrame(base).iloc[:t + 1], dtype=float)
    b = np.asarray(pd.DataFrame(pert).iloc[:t + 1], dtype=float)
    assert a.shape == b.shape
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-12, equal_nan=True, err_msg=f"{name} at <= t={t} moved")


@pytest.mark.parametrize("name", list(FEATURES))
def test_feature_ignores_the_future(name):
    inputs = _inputs()
    base = FEATURES[name](inputs)
    assert pd.DataFrame(base).iloc[:, 0].notna().sum() > 100, "feature must produce values to compare"
    for j, t in enumerate(CUTS):
        pert = _perturb_after(inputs, t, seed=j + 1)
        out = FEATURES[name](pert)
        _assert_past_unchanged(base, out, t, name)
        # and the perturbation did reach the future part (the test has teeth)
        after_a = np.asarray(pd.DataFrame(base).iloc[t + 1:], dtype=float)
        after_b = np.asarray(pd.DataFrame(out).iloc[t + 1:], dtype=float)
        if t < N - 2:
            assert not np.allclose(after_a, after_b, equal_nan=True), f"{name}: perturbation after t had no effect"


def test_harness_catches_lookahead():
    "A centred rolling mean and a full-sample z-score use the future; the harness must flag both."
    inputs = _inputs()
    leaky = {"centred": lambda d: d["spread_bp"].rolling(21, center=True).mean(),
             "full_sample_z": lambda d: (d["spread_bp"] - d["spread_bp"].mean()) / d["spread_bp"].std()}
    for name, fn in leaky.items():
        base, pert = fn(inputs), fn(_perturb_after(inputs, 400, seed=9))
        with pytest.raises(AssertionError):
            _assert_past_unchanged(base, pert, 400, name)


# --- the trading envs' feature sets (config field `features`): the env's observation at t ignores the path after t ---

def _spread_env_obs(frame: pd.DataFrame, n_steps: int, features: str = "seed") -> np.ndarray:
    "Observations of days 0..n_steps of a CreditSpreadEnv on a real slice (start row 0), alternating actions."
    from credit_rl.envs.spread import CreditSpreadConfig, CreditSpreadEnv
    env = CreditSpreadEnv(CreditSpreadConfig(market_model="real", episode_days=200, features=features), frame=frame)
    obs = [env.reset(seed=0, options={"start_row": 0})[0]]
    obs += [env.step(t % 3)[0] for t in range(n_steps)]
    return np.array(obs)


@pytest.mark.parametrize("t", [0, 30, 90])
def test_spread_env_seed_features_ignore_the_future(t):
    from credit_rl.envs.spread import SEED_OBS_NAMES, WARMUP_DAYS
    d = _inputs()
    frame = pd.DataFrame({"ig_oas_bp": d["spread_bp"], "vix": 15 + d["bid_ask_bp"] / 3}, index=IDX)
    base = _spread_env_obs(frame, 120)
    pert = {k: pd.Series(v.to_numpy(), IDX) for k, v in _perturb_after(
        {"spread_bp": d["spread_bp"], "bid_ask_bp": d["bid_ask_bp"]}, WARMUP_DAYS + t, seed=3).items()}
    out = _spread_env_obs(pd.DataFrame({"ig_oas_bp": pert["spread_bp"], "vix": 15 + pert["bid_ask_bp"] / 3}, index=IDX), 120)
    np.testing.assert_array_equal(out[:t + 1], base[:t + 1])
    n = len(SEED_OBS_NAMES)
    assert not np.array_equal(out[t + 1:, -n:], base[t + 1:, -n:]), "perturbation after t had no effect"
    np.testing.assert_array_equal(base[:, :-n], _spread_env_obs(frame, 120, features="base"))   # base columns: the base env's


def test_spread_env_single_bond_seed_features_are_causal():
    "single_bond market: the extra columns at day t equal the features of the spreads stepped up to t (a prefix recomputation)."
    from credit_rl.envs.spread import CreditSpreadEnv, OBS_CLIP, WARMUP_DAYS, seed_features, single_bond_spreads
    env = CreditSpreadEnv(features="seed")
    obs, info = env.reset(seed=123)
    warm = single_bond_spreads(env.config, 123)[:WARMUP_DAYS + 1]
    spreads = list(warm)
    assert spreads[-1] == info["spread_bp"]
    for t in range(80):
        np.testing.assert_array_equal(obs[6:], np.clip(seed_features(np.array(spreads))[-1], -OBS_CLIP, OBS_CLIP).astype(np.float32))
        obs, _, _, _, info = env.step(2 if t % 7 < 3 else 0)
        spreads.append(info["spread_bp"])


@pytest.mark.parametrize("t", [0, 40, 150])
def test_cross_asset_seed_features_ignore_the_future(t):
    "The extra columns of decision day t depend on market days <= warmup + t only; the env reads exactly them."
    from credit_rl.envs.cross_asset import CrossAssetEnv
    from credit_rl.envs.cross_asset_table import N_OBS, CrossAssetConfig, episode_market, feature_table, seed_market_features
    c = CrossAssetConfig(episode_days=200, features="seed")
    M = episode_market(c, 11, 0)
    d = c.warmup_days + t
    rng = np.random.default_rng(t)
    M2 = M.copy(); M2[d + 1:] *= np.exp(rng.normal(0, 0.3, M2[d + 1:].shape))
    a, b = seed_market_features(M), seed_market_features(M2)
    np.testing.assert_array_equal(b[:d + 1], a[:d + 1])
    assert not np.allclose(b[d + 1:], a[d + 1:])
    env = CrossAssetEnv(c)
    obs = [env.reset(seed=11)[0]] + [env.step(np.zeros(8, np.float32))[0] for _ in range(t)]
    np.testing.assert_array_equal(obs[t][N_OBS:], feature_table(c, M)[t].astype(np.float32))
