"""The synthetic market against real history (credit_rl.market.calibration) and the scripted crisis episodes.

* the acceptance rule of issue 4: every real statistic inside its simulated 1-99 % band, all but at most two inside
  5-95 % (200 paths of the real sample length, no scripted episodes); and the rule rejects wrong models;
* the COVID-2020 episode reproduces calibration.md §3 within 25 % on several paths; the 2022 episode widens slowly
  while rates and MOVE rise;
* path k is the same whether simulated alone or in a batch of 64.
The real-data tests skip cleanly when the shared data folder is absent.
"""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from credit_rl.config import shared_data_dir
from credit_rl.market.synthetic import CORE_FIELDS, FIELDS, MarketParams, covid_episode_summary, market_frame, simulate_market

_DATA = shared_data_dir()
needs_data = pytest.mark.skipif(_DATA is None or not _DATA.is_dir(), reason="shared real data folder absent")


def within(x, target, rel=0.25):
    return abs(x - target) <= rel * abs(target)


@pytest.fixture(scope="module")
def real():
    from credit_rl.market.calibration import real_statistics
    return real_statistics()


@needs_data
def test_calibration_rule_passes(real):
    from credit_rl.market.calibration import STATISTICS, locate, passes, simulated_statistics
    values, sizes = real
    assert sizes["days"] > 7000 and sizes["weeks"] > 1500        # the whole 1996-2026 sample was read
    table = locate(values, simulated_statistics(None, sizes, n_paths=200, seed=20260101))
    assert list(table.statistic) == list(STATISTICS)
    assert np.isfinite(table[["real", "sim_median", "p1", "p5", "p95", "p99"]].to_numpy()).all()
    outside_90 = table[table.verdict != "inside 5-95"]
    assert (table.verdict != "OUTSIDE 1-99").all(), table.to_string()
    assert len(outside_90) <= 2, table.to_string()
    assert passes(table)


@needs_data
def test_calibration_rule_holds_on_another_seed(real):
    from credit_rl.market.calibration import locate, passes, simulated_statistics
    values, sizes = real
    assert passes(locate(values, simulated_statistics(None, sizes, n_paths=200, seed=7)))


@needs_data
@pytest.mark.parametrize("change", [dict(hy_theta_bp=760.0), dict(vix_level=(17.8, 17.8, 17.8)), dict(ig_hy_corr=0.3),
                                    dict(jump_rate_per_yr=(0.0, 0.0, 0.0))])
def test_calibration_rule_rejects_wrong_models(real, change):
    from credit_rl.market.calibration import locate, passes, simulated_statistics
    values, sizes = real
    assert not passes(locate(values, simulated_statistics(replace(MarketParams(), **change), sizes, n_paths=200, seed=20260101)))


@needs_data
def test_calibration_table_api():
    from credit_rl.market.calibration import calibration_table
    with pytest.raises(ValueError, match="n_paths=50"):
        calibration_table(n_paths=50)


@pytest.mark.parametrize("path", range(6))
def test_covid_episode_matches_2020_within_25pct(path):
    f = market_frame(n_days=400, seed=11, path=path, start="2019-06-03", episodes=[("covid_2020", "2020-02-05")])
    s = covid_episode_summary(f)
    assert within(s["hy_ratio"], 1087 / 357), s                  # HY 357 -> 1087 bp, 02-19 -> 03-23 (23 trading days)
    assert within(s["ig_ratio"], 401 / 102), s                   # IG 102 -> 401 bp
    assert within(s["vix_max"], 82.7), s                         # VIX peak 82.7 (03-16)
    assert within(s["bid_ask_ratio"], 5.0), s                    # immediacy cost ~5x (Kargar et al. 2021)
    assert 3.0 * 0.75 <= s["etf_volume_ratio"] <= 4.0 * 1.25, s  # ETF volume ~3-4x
    assert within(s["lqd_premium_min_pct"], -5.0), s             # LQD ~5 % below NAV (03-12) ...
    assert within(s["lqd_premium_max_pct"], 5.0), s              # ... then a record +5 % premium (03-25)
    w = f.loc["2020-02-19":"2020-03-31"]
    assert w.lqd_premium_pct.idxmin() < w.lqd_premium_pct.idxmax()
    assert (f.loc["2020-03-09":"2020-03-23", "regime"] == 2).all()
    hy_peak = f.loc["2020-03-23", "hy_oas_bp"]                    # recovery: by mid-August HY is back below 60 % of its peak
    assert f.loc["2020-08-10":"2020-08-18", "hy_oas_bp"].mean() < 0.6 * hy_peak
    assert f.loc["2020-08-10":"2020-08-18", "ig_bond_bid_ask_bp"].mean() < 0.5 * f.loc["2020-03-23", "ig_bond_bid_ask_bp"]


@pytest.mark.parametrize("path", range(4))
def test_2022_episode_slow_widening_rates_and_move_up(path):
    f = market_frame(n_days=700, seed=12, path=path, start="2021-01-04", episodes=[("rate_shock_2022", "2021-12-31")])
    a, hy_jul = f.loc["2021-12-31"], f.loc["2022-07-01":"2022-07-08", "hy_oas_bp"].max()
    assert within(hy_jul / a.hy_oas_bp, 599 / 310)                                   # HY 310 -> 599 bp by early July
    assert within(f.loc["2022-10-24", "ust10y_yield_pct"] - a.ust10y_yield_pct, 4.25 - 1.52)  # 10y +273 bp
    assert within(f.loc["2022-01-01":"2022-12-30", "move"].max(), 160.7)             # MOVE peak 160.7
    assert within(f.loc["2022-01-01":"2022-12-30", "vix"].max(), 36.5)               # VIX peak 36.5
    weekly_hy = f.loc["2022-01-01":"2022-07-08", "hy_oas_bp"].iloc[::5]
    assert weekly_hy.pct_change().abs().max() < 0.25                                 # slow: no week moves 25 % ...
    half = weekly_hy.index[np.argmax(weekly_hy.to_numpy() > a.hy_oas_bp * (1 + 0.5 * (599 / 310 - 1)))]
    assert (half - pd.Timestamp("2021-12-31")).days > 90                             # ... half the widening takes > 3 months


def test_path_is_independent_of_batch():
    batch = simulate_market(n_days=600, n_paths=64, seed=21)
    for k in (0, 17, 63):
        alone = simulate_market(n_days=600, n_paths=1, seed=21, first_path=k)
        for name in FIELDS:
            np.testing.assert_array_equal(alone[name][0], batch[name][k])
    other = simulate_market(n_days=600, n_paths=64, seed=21, chunk=7, threads=1, fields="core")
    for name in CORE_FIELDS:
        np.testing.assert_array_equal(other[name], batch[name])
    assert not np.array_equal(simulate_market(n_days=600, n_paths=1, seed=22)["hy_oas_bp"], batch["hy_oas_bp"][:1])


def test_frame_schema_shares_real_names():
    from credit_rl.market.data import SHARED_FRED
    f = market_frame(n_days=30, seed=1)
    assert isinstance(f.index, pd.DatetimeIndex) and f.index.name == "date" and f.index.freqstr == "B"
    shared = {"ig_oas_bp", "hy_oas_bp", "vix", "ust10y_yield_pct"}
    assert shared <= set(SHARED_FRED) and shared <= set(f.columns) and "move" in f.columns
    assert f["regime"].dtype == np.int8 and f["hy_oas_bp"].dtype == np.float32
