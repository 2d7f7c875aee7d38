"""Cross-check of credit_rl.metrics / credit_rl.risk against empyrical-reloaded on the same returns.

Where the definitions match, the numbers must agree to 1e-8 (absolute, or relative to the size of the
number when it is above 1). Where conventions differ, the test converts first (see the last section of
nbs/03_metrics.ipynb): information ratio = empyrical's excess_sharpe x sqrt(252); VaR and CVaR are
reported as positive losses (minus empyrical's).
"""
import numpy as np
import pandas as pd
import pytest

import empyrical as ep

from credit_rl import metrics as m
from credit_rl import risk

TOL = 1e-8
SQRT_252 = np.sqrt(252)


def _series():
    "(name, returns, benchmark) triples: the worked example and random normal, fat-tailed and losing series."
    r4 = np.array([0.01, -0.02, 0.03, -0.01])
    yield "worked_example", r4, np.array([0.005, -0.01, 0.02, 0.0])
    for seed in range(50):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(2, 2001))
        b = rng.normal(0.0002, 0.004, n)
        yield f"normal_{seed}_{n}", 0.6 * b + rng.normal(0.0001, 0.002, n), b
    for seed in range(10):
        rng = np.random.default_rng(1000 + seed)
        n = 1500
        b = 0.003 * rng.standard_t(3, n) / np.sqrt(3)
        yield f"t3_{seed}", 1.2 * b - 0.01 * (rng.random(n) < 0.01) + 0.0001, b
    rng = np.random.default_rng(7)
    yield "losing", rng.normal(-0.002, 0.01, 500), rng.normal(-0.001, 0.008, 500)


SERIES = list(_series())
IDS = [name for name, _, _ in SERIES]

# ours(r, b) -> float, theirs(r, b) -> float
PAIRS = {
    "annual_return": (lambda r, b: m.annual_return(r), lambda r, b: ep.annual_return(r)),
    "annual_volatility": (lambda r, b: m.annual_volatility(r), lambda r, b: ep.annual_volatility(r)),
    "sharpe_ratio": (lambda r, b: m.sharpe_ratio(r), lambda r, b: ep.sharpe_ratio(r)),
    "sharpe_ratio_rf": (lambda r, b: m.sharpe_ratio(r, risk_free=0.0001), lambda r, b: ep.sharpe_ratio(r, risk_free=0.0001)),
    "sortino_ratio": (lambda r, b: m.sortino_ratio(r), lambda r, b: ep.sortino_ratio(r)),
    "sortino_ratio_target": (lambda r, b: m.sortino_ratio(r, target_return=0.0002),
                             lambda r, b: ep.sortino_ratio(r, required_return=0.0002)),
    "downside_deviation": (lambda r, b: m.downside_deviation(r), lambda r, b: ep.downside_risk(r)),
    "max_drawdown": (lambda r, b: m.max_drawdown(r), lambda r, b: ep.max_drawdown(r)),
    "calmar_ratio": (lambda r, b: m.calmar_ratio(r), lambda r, b: ep.calmar_ratio(r)),
    "information_ratio": (lambda r, b: m.information_ratio(r, b), lambda r, b: ep.excess_sharpe(r, b) * SQRT_252),
    "up_capture": (lambda r, b: m.up_capture(r, b), lambda r, b: ep.up_capture(r, b)),
    "down_capture": (lambda r, b: m.down_capture(r, b), lambda r, b: ep.down_capture(r, b)),
    "historical_var_95": (lambda r, b: risk.historical_var(r, 0.95), lambda r, b: -ep.value_at_risk(r, 0.05)),
    "historical_var_99": (lambda r, b: risk.historical_var(r, 0.99), lambda r, b: -ep.value_at_risk(r, 0.01)),
    "historical_cvar_95": (lambda r, b: risk.historical_cvar(r, 0.95), lambda r, b: -ep.conditional_value_at_risk(r, 0.05)),
    "historical_cvar_99": (lambda r, b: risk.historical_cvar(r, 0.99), lambda r, b: -ep.conditional_value_at_risk(r, 0.01)),
}


def _close(ours: float, theirs: float) -> bool:
    if np.isnan(theirs) or np.isnan(ours): return bool(np.isnan(theirs) and np.isnan(ours))
    return abs(ours - theirs) <= TOL * max(1.0, abs(theirs))


def max_abs_differences() -> dict:
    "Largest |ours - empyrical| of each metric over all series (printed by `python tests/test_metrics_crosscheck.py`)."
    out = {}
    for key, (ours, theirs) in PAIRS.items():
        d = [abs(ours(r, b) - theirs(r, b)) for _, r, b in SERIES]
        out[key] = float(np.nanmax(d))
    dd = [np.max(np.abs(np.asarray(m.drawdown_series(r)) - _empyrical_drawdown(r))) for _, r, _ in SERIES]
    out["drawdown_series"] = float(max(dd))
    return out


def _empyrical_drawdown(r: np.ndarray) -> np.ndarray:
    "Drawdown series from empyrical's cum_returns with the starting value prepended (as ep.max_drawdown does)."
    wealth = np.r_[1.0, ep.cum_returns(r, starting_value=1.0)]
    peak = np.fmax.accumulate(wealth)
    return (wealth / peak - 1.0)[1:]


@pytest.mark.parametrize("key", list(PAIRS))
@pytest.mark.parametrize("name,r,b", SERIES, ids=IDS)
def test_metric_matches_empyrical(key, name, r, b):
    ours, theirs = PAIRS[key]
    o, t = ours(r, b), theirs(r, b)
    assert _close(o, t), f"{key} on {name}: ours {o!r} vs empyrical {t!r} (diff {o - t:.3e})"


@pytest.mark.parametrize("name,r,b", SERIES, ids=IDS)
def test_drawdown_series_matches_empyrical(name, r, b):
    np.testing.assert_allclose(np.asarray(m.drawdown_series(r)), _empyrical_drawdown(r), rtol=0, atol=TOL)


def test_series_input_matches_array_input():
    "pd.Series input gives the same numbers as arrays (empyrical also accepts both)."
    _, r, b = SERIES[5]
    idx = pd.bdate_range("2020-01-01", periods=r.size)
    rs, bs = pd.Series(r, index=idx), pd.Series(b, index=idx)
    for key, (ours, theirs) in PAIRS.items():
        assert _close(ours(rs, bs), theirs(rs, bs)), key


def test_checks_can_fail():
    "The comparison is not vacuous: a one-day shift or a different convention is detected."
    _, r, b = SERIES[3]
    assert not _close(m.sharpe_ratio(r), ep.sharpe_ratio(r[1:]))
    assert not _close(m.information_ratio(r, b), ep.excess_sharpe(r, b))  # un-annualised convention differs
    assert not _close(risk.historical_var(r, 0.95), ep.value_at_risk(r, 0.05))  # sign convention differs


def test_edge_conventions_differ_on_purpose():
    "Documented differences: empyrical skips NaN where we raise; a constant series gives inf, not 1e16."
    with pytest.raises(ValueError, match="non-finite"):
        m.sharpe_ratio([0.01, np.nan, 0.02])
    assert np.isfinite(ep.sharpe_ratio(np.array([0.01, np.nan, 0.02])))
    assert m.sharpe_ratio(np.full(100, 0.001)) == np.inf


if __name__ == "__main__":
    import empyrical
    print("empyrical-reloaded", getattr(empyrical, "__version__", "?"), "on", len(SERIES), "series")
    for key, diff in max_abs_differences().items():
        print(f"{key:24s} max |ours - empyrical| = {diff:.3e}")
