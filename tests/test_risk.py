"""Property tests of credit_rl.risk and the carry/price decomposition against the environment's own P&L split."""
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from credit_rl import risk
from credit_rl.envs.spread import CreditSpreadConfig, CreditSpreadEnv, rollout

METHODS = risk.VAR_METHODS
returns_st = arrays(np.float64, st.integers(20, 400),
                    elements=st.floats(-0.05, 0.05, allow_nan=False, allow_subnormal=False)).filter(lambda r: np.ptp(r) > 1e-6)


def _quiet(fn, *args):
    "Call without the Cornish-Fisher validity warning (hypothesis draws shapes far outside its domain)."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args)


@settings(max_examples=60, deadline=None)
@given(r=returns_st, shift=st.floats(-0.01, 0.01), scale=st.floats(0.1, 10.0))
def test_var_cvar_translation_and_scale(r, shift, scale):
    "VaR/CVaR are translation-equivariant (a constant daily gain c lowers the loss by c) and positively homogeneous."
    for method in METHODS:
        for level in (0.95, 0.99):
            for fn in (risk.value_at_risk, risk.conditional_value_at_risk):
                base = _quiet(fn, r, level, method)
                np.testing.assert_allclose(_quiet(fn, r + shift, level, method), base - shift, atol=1e-12, rtol=1e-9)
                np.testing.assert_allclose(_quiet(fn, r * scale, level, method), base * scale, atol=1e-12, rtol=1e-9)


@settings(max_examples=60, deadline=None)
@given(r=returns_st)
def test_historical_and_gaussian_orderings(r):
    "CVaR >= VaR and the 99 % numbers >= the 95 % ones (historical and Gaussian; Cornish-Fisher only where valid)."
    for method in ("historical", "gaussian"):
        for level in (0.95, 0.99):
            assert risk.conditional_value_at_risk(r, level, method) >= risk.value_at_risk(r, level, method) - 1e-15
        assert risk.value_at_risk(r, 0.99, method) >= risk.value_at_risk(r, 0.95, method) - 1e-15
        assert risk.conditional_value_at_risk(r, 0.99, method) >= risk.conditional_value_at_risk(r, 0.95, method) - 1e-15
    assert risk.historical_cvar(r, 0.99) <= -r.min() + 1e-15  # no tail mean beyond the worst day


@settings(max_examples=100, deadline=None)
@given(skew=st.floats(-3, 3), kurt=st.floats(-2, 30))
def test_cornish_fisher_ordering_where_monotone(skew, kurt):
    "Inside its validity check the CF quantile map is increasing, so CF VaR99 >= VaR95 and CVaR >= VaR."
    from scipy import stats
    z = np.linspace(-4, 0, 4001)
    increasing = bool(np.all(np.diff(risk.cornish_fisher_z(z, skew, kurt)) > 0))
    assert risk.cornish_fisher_is_monotone(skew, kurt, -4, 0) == increasing or abs(
        np.min(np.diff(risk.cornish_fisher_z(z, skew, kurt)))) < 1e-9  # grid vs exact boundary
    if risk.cornish_fisher_is_monotone(skew, kurt, -4, 0):
        q95, q99 = (float(risk.cornish_fisher_z(stats.norm.ppf(p), skew, kurt)) for p in (0.05, 0.01))
        assert q99 < q95


def test_cvar_warning_is_raised_for_extreme_kurtosis():
    r = np.zeros(1000); r[[5, 500, 900]] = [-0.2, 0.15, -0.1]; r[::3] += 1e-4
    with pytest.warns(RuntimeWarning, match="non-monotone"):
        risk.cornish_fisher_cvar(r, 0.99)


@pytest.mark.parametrize("include_costs", [True, False])
def test_carry_price_decomposition_reproduces_env_pnl(include_costs):
    "The holdings-based split equals the env's pnl_spread / pnl_carry / pnl_financing, day by day, to 1e-15."
    cfg = CreditSpreadConfig(episode_days=120, include_costs=include_costs, financing_spread_bp_per_yr=30.0)
    env = CreditSpreadEnv(cfg)
    rng = np.random.default_rng(5)
    actions = rng.integers(0, len(cfg.positions), 10_000)
    counter = iter(actions)
    _, info0 = env.reset(seed=17)
    df = rollout(env, lambda obs: int(next(counter)), seed=17)
    n = len(df)
    weights = np.r_[cfg.initial_position, df["position"].to_numpy()]           # w_t held into day t+1
    spreads = np.r_[info0["spread_bp"], df["spread_bp"].to_numpy()]             # s_0 .. s_n
    durations = np.array([env.spread_duration(t) for t in range(n + 1)])       # D_t
    dec = risk.carry_price_decomposition(weights, spreads, durations, financing_spread_bp_per_yr=cfg.financing_spread_bp_per_yr)
    np.testing.assert_allclose(dec["price_return"].to_numpy(), df["pnl_spread"].to_numpy(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(dec["carry_return"].to_numpy(), df["pnl_carry"].to_numpy(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(dec["financing_return"].to_numpy(), df["pnl_financing"].to_numpy(), rtol=0, atol=1e-15)
    # the reward is the decomposition's total minus the trading cost
    np.testing.assert_allclose(dec["total_return"].to_numpy() - df["cost"].to_numpy(), df["reward"].to_numpy(), rtol=0, atol=1e-15)
    assert (df["position"].diff().abs() > 0).sum() > 10  # the policy really traded


def test_factor_attribution_recovers_env_duration():
    "Regressing the env's frictionless long-only P&L on -Δs recovers the bond's spread duration (the env's own D_t)."
    cfg = CreditSpreadConfig(episode_days=252, include_costs=False, positions=(0.0, 1.0), financing_spread_bp_per_yr=0.0)
    env = CreditSpreadEnv(cfg)
    _, info0 = env.reset(seed=3)
    df = rollout(env, lambda obs: 1, seed=3)
    spreads = np.r_[info0["spread_bp"], df["spread_bp"].to_numpy()]
    ds = np.diff(spreads)
    factors = risk.credit_factor_returns(np.zeros_like(ds), ds)[["spread_duration"]]
    att = risk.factor_attribution(df["reward"].to_numpy()[1:], factors.iloc[1:])  # day 0 is the first fill (flat before)
    durations = np.array([env.spread_duration(t) for t in range(1, len(df))])
    est = att["exposures"].loc["spread_duration", "estimate"]
    assert abs(est - durations.mean()) < 0.05, (est, durations.mean())
    assert att["r_squared"] > 0.99
