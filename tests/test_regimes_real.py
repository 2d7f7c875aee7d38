"Regimes on the real series: COVID stress probability, filtered vs smoothed, no look-ahead, VIX bucket shares."
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_rl.market.data import load_shared_market, shared_data_dir
from credit_rl.market.regimes import (forward_filter, hmm_observations, hy_percentile_regime, vix_bucket,
                               walk_forward_hmm)

DATA = shared_data_dir()
pytestmark = pytest.mark.skipif(DATA is None or not Path(DATA).is_dir(), reason="shared data folder absent")


@pytest.fixture(scope="module")
def market():
    return load_shared_market(DATA, ffill_limit=0)[0]


@pytest.fixture(scope="module")
def obs(market):
    return hmm_observations(market.vix, market.hy_oas_bp)


@pytest.fixture(scope="module")
def walk_forward(obs):
    return walk_forward_hmm(obs)  # 3 states, yearly refits, expanding window, 5 years minimum history


def test_covid_filtered_stress_above_half_every_business_day(obs, walk_forward):
    probs, _ = walk_forward
    days = pd.bdate_range("2020-03-09", "2020-03-31")
    assert days.isin(obs.index).all(), "every business day of the window must be an observation"
    p = probs.loc[days, "p_stress"]
    assert p.notna().all() and (p > 0.5).all(), p[p <= 0.5]
    assert p.min() > 0.99


def test_quiet_period_is_not_stress(walk_forward):
    probs, _ = walk_forward
    assert (probs.loc["2017-01-01":"2017-12-31", "p_stress"] < 0.5).mean() > 0.95  # VIX ~ 11 all year


def test_state_labels_stable_across_refits(walk_forward):
    _, models = walk_forward
    assert len(models) >= 20
    for date, m in models.items():
        vix_means = np.exp(m.means_[:, 0])
        assert np.all(np.diff(vix_means) > 0), date
        assert vix_means[-1] > 25 and vix_means[0] < 21, (date, vix_means)


def test_filtered_equals_hmmlearn_smoothed_only_at_last_observation(obs, walk_forward):
    _, models = walk_forward
    model = list(models.values())[-1]
    X = obs.to_numpy()
    filtered, smoothed = forward_filter(model, X), model.predict_proba(X)
    np.testing.assert_allclose(filtered[-1], smoothed[-1], atol=1e-8)
    assert np.abs(filtered[:-1] - smoothed[:-1]).max() > 0.5  # smoothing uses the future elsewhere


def test_forward_filter_ignores_future_with_fixed_model(obs, walk_forward):
    _, models = walk_forward
    model = list(models.values())[-1]
    X = obs.to_numpy().copy()
    base = forward_filter(model, X)
    cut = obs.index.searchsorted(pd.Timestamp("2020-03-31"), side="right")
    X[cut:] += np.random.default_rng(0).normal(0, 1.0, X[cut:].shape)
    assert np.array_equal(forward_filter(model, X)[:cut], base[:cut])


def _perturbed_walk_forward_unchanged(obs, cut_date, **kw):
    base, _ = walk_forward_hmm(obs, **kw)
    cut = obs.index.searchsorted(pd.Timestamp(cut_date), side="right")
    noisy = obs.copy()
    noisy.iloc[cut:] = noisy.iloc[cut:] + np.random.default_rng(1).normal(0, 0.5, noisy.iloc[cut:].shape)
    pert, _ = walk_forward_hmm(noisy, **kw)
    assert pert.iloc[:cut].equals(base.iloc[:cut])
    assert not pert.iloc[cut:].equals(base.iloc[cut:])


def test_walk_forward_ignores_future_short(obs):
    _perturbed_walk_forward_unchanged(obs.loc[:"2011-12-31"], "2008-10-15", refit_every=2)


@pytest.mark.slow
def test_walk_forward_ignores_future_full_sample(obs):
    _perturbed_walk_forward_unchanged(obs, "2020-03-18")


def test_vix_bucket_shares_match_calibration(market):
    shares = vix_bucket(market.vix.loc["1997":].dropna()).value_counts(normalize=True).sort_index()
    np.testing.assert_allclose(shares.to_numpy(), [0.285, 0.511, 0.204], atol=0.01)  # calibration.md section 2


def test_hy_percentile_regime_causal_and_covid(market):
    hy = market.hy_oas_bp
    reg = hy_percentile_regime(hy)
    assert (reg.loc["2020-03-16":"2020-03-31"] == 2).all()
    cut = hy.index.searchsorted(pd.Timestamp("2015-01-01"))
    noisy = hy.copy()
    noisy.iloc[cut:] = noisy.iloc[cut:] * 3
    pd.testing.assert_series_equal(hy_percentile_regime(noisy).iloc[:cut], reg.iloc[:cut])
