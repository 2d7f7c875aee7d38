"""Regime and crisis analysis (credit_rl.backtest.analysis): causal labels, bucket tables that add up, the window table on a
hand-made series, and the `regimes_crisis` research template under papermill with smoke parameters."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_rl.backtest.analysis import (bucket_table, filtered_probs, fit_regime_hmm, label_returns,
                                regime_labels, window_table)
from credit_rl.config import shared_data_dir
from credit_rl.studies.regimes_crisis import RegimeCrisisParams
from credit_rl.market.regimes import hmm_observations, walk_forward_hmm
from credit_rl.market.synthetic import market_frame

REPO = Path(__file__).resolve().parents[1]


def _labels_synthetic(vix, hy, model):
    return regime_labels(vix, hy, filtered_probs(model, hmm_observations(vix, hy)), min_periods=252)


def test_labels_are_causal_on_synthetic_paths():
    "Perturb VIX and HY OAS after day t: every label up to t, and every return label up to t+1, is unchanged."
    train = market_frame(n_days=2520, seed=11, fields="core")
    model = fit_regime_hmm(hmm_observations(train.vix, train.hy_oas_bp))
    f = market_frame(n_days=1500, seed=5, fields="core")
    vix, hy = f.vix.astype(float), f.hy_oas_bp.astype(float)
    base = _labels_synthetic(vix, hy, model)
    returns = pd.Series(np.zeros(len(f) - 1), index=f.index[1:])
    for t in (400, 900, 1300):
        vb, hb = vix.copy(), hy.copy()
        vb.iloc[t + 1:] = vb.iloc[t + 1:] * 2.0 + 5.0
        hb.iloc[t + 1:] = hb.iloc[t + 1:] * 0.5
        bumped = _labels_synthetic(vb, hb, model)
        pd.testing.assert_frame_equal(bumped.iloc[: t + 1], base.iloc[: t + 1])
        assert not bumped.iloc[t + 1:].equals(base.iloc[t + 1:]), "the perturbation must reach the later labels"
        lr_base, lr_bumped = label_returns(returns, base), label_returns(returns, bumped)
        pd.testing.assert_frame_equal(lr_bumped.loc[: f.index[t + 1]], lr_base.loc[: f.index[t + 1]])  # decision-day labels


@pytest.mark.skipif(shared_data_dir() is None, reason="shared real data not found")
def test_labels_are_causal_on_real_data_with_walk_forward_hmm():
    "The real series to 2012 with the walk-forward HMM (refits every 5 years): perturbing after 2008-09-15 leaves labels up to it alone."
    from credit_rl.market.data import load_shared_market
    real = load_shared_market(shared_data_dir())[0].loc[:"2012-12-31"]
    def labels(vix, hy):
        probs, _ = walk_forward_hmm(hmm_observations(vix, hy), refit_every=5)
        return regime_labels(vix, hy, probs, index=real.index)
    t = real.index.get_loc(pd.Timestamp("2008-09-15"))
    base = labels(real.vix, real.hy_oas_bp)
    vb, hb = real.vix.copy(), real.hy_oas_bp.copy()
    vb.iloc[t + 1:] *= 0.5; hb.iloc[t + 1:] *= 2.0
    bumped = labels(vb, hb)
    pd.testing.assert_frame_equal(bumped.iloc[: t + 1], base.iloc[: t + 1])
    assert not bumped.iloc[t + 1:].equals(base.iloc[t + 1:])
    assert base.hmm.notna().sum() > 1000 and base.vix.loc["2008-10-10"] == "VIX > 25"


def test_bucket_tables_recompose_to_the_whole_sample():
    "Per scheme the bucket days add up to the sample, and the buckets' compounded growth multiplies to the sample's."
    f = market_frame(n_days=1500, seed=2, fields="core")
    model = fit_regime_hmm(hmm_observations(f.vix.astype(float), f.hy_oas_bp.astype(float)))
    labels = _labels_synthetic(f.vix.astype(float), f.hy_oas_bp.astype(float), model)
    rng = np.random.default_rng(0)
    returns = pd.Series(rng.normal(2e-4, 4e-3, len(f) - 1), index=f.index[1:], name="demo")
    table = bucket_table(returns, label_returns(returns, labels), n_resamples=1000, seed=0)
    growth = float(np.prod(1 + returns))
    for scheme in ("vix", "hmm", "hy_flow"):
        t = table[table.scheme == scheme]
        assert t.days.sum() == len(returns), scheme
        assert np.isclose(np.prod((1 + t.annual_return) ** (t.days / 252)), growth, rtol=1e-10), scheme
        labelled = t[t.regime != "unlabelled"]
        assert np.isclose(labelled.share.sum(), 1.0)
        assert ((labelled.sharpe_lo <= labelled.sharpe) & (labelled.sharpe <= labelled.sharpe_hi)).all()
    assert table[table.scheme == "hy_flow"].regime.tolist() == ["risk-on", "risk-off", "unlabelled"]
    with pytest.raises(ValueError, match="aligned"):
        bucket_table(returns, labels.iloc[:-1])


def test_window_table_on_a_hand_made_series():
    "300 days of +-0.2 %, then a 10-day crash window: return, drawdown, worst day, VaR-95 and its exceedances by hand."
    d = pd.bdate_range("2007-01-01", periods=320)
    quiet = np.tile([0.002, -0.002], 150)
    crash = np.array([-0.03, 0.01, -0.05, 0.02, -0.001, 0.004, -0.01, 0.0, 0.03, -0.002])
    r = pd.Series(np.r_[quiet, crash, np.zeros(10)], index=d)
    w = window_table(r, {"crash": (d[300], d[309]), "short history": (d[50], d[60])}, var_lookback_days=250).set_index("window")
    row = w.loc["crash"]
    assert row.days == 10 and row.start == d[300] and row.end == d[309]
    assert np.isclose(row.total_return, np.prod(1 + crash) - 1)
    equity = np.cumprod(1 + crash)
    assert np.isclose(row.max_drawdown, np.min(equity / np.maximum.accumulate(np.maximum(equity, 1.0)) - 1))
    assert row.worst_day == -0.05 and row.worst_day_date == d[302]
    assert np.isclose(row["var"], 0.002)                                  # the 5 % quantile of +-0.2 % days
    assert row.var_exceedances == 3                                     # -3 %, -5 %, -1 %; -0.2 % is not beyond it
    assert np.isclose(row.expected_exceedances, 0.5)
    assert np.isnan(w.loc["short history", "var"]) and np.isnan(w.loc["short history", "var_exceedances"])  # 50 days < 100


def _smoke_params():
    from credit_rl.book.runs import load_spec
    return load_spec(REPO / "params" / "regimes_crisis.yaml", "smoke").params


def _run_template(tmp_path, params):
    import papermill as pm
    pm.execute_notebook(str(REPO / "nbs" / "research" / "regimes_crisis.ipynb"), str(tmp_path / "notebook.ipynb"),
                        kernel_name="python3", parameters={"params": params, "run_dir": str(tmp_path)}, cwd=str(REPO), progress_bar=False)
    return json.loads((tmp_path / "metrics.json").read_text()), pd.read_parquet(tmp_path / "timeseries.parquet")


@pytest.mark.slow
@pytest.mark.skipif(shared_data_dir() is None, reason="shared real data not found")
def test_template_runs_with_smoke_params(tmp_path):
    "The research template under papermill (smoke params) writes every table, the passive benchmark's regime rows and the time series."
    metrics, ts = _run_template(tmp_path, _smoke_params())
    assert metrics["real_data"] is True
    for k in ("real_regimes", "real_windows", "synthetic_regimes", "synthetic_windows"):
        assert metrics["tables"][k], k
        assert (tmp_path / f"{k}.csv").is_file()
    reg = pd.DataFrame(metrics["tables"]["real_regimes"])
    passive = reg[(reg.policy == "passive_ig") & (reg.cost_multiplier == 1.0)]
    assert set(passive.scheme) == {"vix", "hmm", "hy_flow", "all"}
    assert passive[passive.scheme == "vix"].days.sum() == passive[passive.scheme == "all"].days.item()
    assert set(reg.cost_multiplier) == {1.0, 2.0, 3.0} and "LQD - dur-matched IEF" in set(reg.policy)
    win = pd.DataFrame(metrics["tables"]["real_windows"])
    assert set(win.window) == {"COVID 2020-03", "Rate shock 2022", "Volmageddon 2018-02", "GFC 2008-09..2009-03"}
    covid = win[(win.window == "COVID 2020-03") & (win.policy == "passive_ig") & (win.cost_multiplier == 1.0)].iloc[0]
    assert covid.total_return < -0.05 and covid.var_exceedances > covid.expected_exceedances  # March 2020 hurt IG
    assert {"policy", "eval_seed", "step", "return", "date", "vix", "hmm", "hy_flow"} <= set(ts.columns)
    assert "real:passive_ig@1x" in set(ts.policy) and "synthetic:passive_ig@3x" in set(ts.policy)
    assert set(metrics["policies"]) >= {"real:passive_ig", "real:carry", "real:momentum", "real:value"}


@pytest.mark.slow
def test_template_runs_without_real_data(tmp_path):
    "With data_dir naming a missing folder the chapter still runs (synthetic only) and says so."
    params = _smoke_params() | {"data_dir": "no/such/folder", "rules": ["passive_ig", "carry"], "cost_multipliers": [1.0, 3.0]}
    metrics, ts = _run_template(tmp_path, params)
    assert metrics["real_data"] is False and "real_regimes" not in metrics["tables"]
    assert set(ts.market) == {"synthetic"} and set(metrics["policies"]) == {"synthetic:passive_ig", "synthetic:carry"}
    out = json.loads((tmp_path / "notebook.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in out["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert "NOT AVAILABLE" in text


def test_params_schema_rejects_bad_values():
    from credit_rl.config import ParamsError, from_dict
    with pytest.raises(ParamsError, match="n_resamples"):
        from_dict(RegimeCrisisParams, {"n_resamples": 100})
    with pytest.raises(ParamsError, match="hmm_rule"):
        from_dict(RegimeCrisisParams, {"hmm_rule": "viterbi"})
