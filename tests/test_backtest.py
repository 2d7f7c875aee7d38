"""Backtest engine: same numbers as the environment, no look-ahead, walk-forward folds, costs, real data."""
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from credit_rl.backtest.engine import (BacktestConfig, BacktestMarket, EnvPolicy, check_market, check_no_lookahead,
                                compare_policies, config_from_env, cost_scenarios, daily_pnl, decide, market_from_env,
                                market_from_frame, market_from_paths, run_backtest, strongest_rule, weights_from_targets)
from credit_rl.backtest.walkforward import Fold, walk_forward, walk_forward_splits
from credit_rl.config import shared_data_dir
from credit_rl.costs import delay_cost_moments, trade_cost
from credit_rl.envs.spread import CreditSpreadConfig, CreditSpreadEnv, rollout
from credit_rl.market.bond import SpreadProcessParams, simulate_spread_paths
from credit_rl.agents.rules import CarryRule, MomentumRule, PassiveIG, ValueRule, default_rules


def busy_policy(obs):
    "Trades often: long after tightening, short after sharp widening, flat otherwise (env action indices)."
    return 2 if obs[1] < -0.5 else (0 if obs[1] > 1.0 else 1)


ENV_CONFIGS = [
    CreditSpreadConfig(episode_days=252),
    CreditSpreadConfig(episode_days=300, include_costs=False, initial_position=1.0),
    CreditSpreadConfig(episode_days=120, positions=(0.0, 0.5, 2.0), capital_usd=50e6, impact_coef=0.5,
                       financing_spread_bp_per_yr=-10.0, spread_duration_years=3.0, maturity_years=4.0),
    CreditSpreadConfig(episode_days=600, maturity_years=2.0, spread_duration_years=1.9),  # matures: terminates early
]


@pytest.mark.parametrize("cfg", ENV_CONFIGS)
@pytest.mark.parametrize("seed", [0, 123])
def test_backtest_reproduces_rollout_exactly(cfg, seed):
    ro = rollout(CreditSpreadEnv(cfg), busy_policy, seed=seed)
    bt = run_backtest(EnvPolicy(busy_policy, cfg), market_from_env(cfg, seed), config_from_env(cfg))
    n = len(ro)                                     # the env may terminate at maturity before episode_days
    assert n <= len(bt.daily) and (n == len(bt.daily) or cfg.maturity_years * 252 <= cfg.episode_days)
    d = bt.daily.iloc[:n]
    for col_bt, col_ro in (("return", "reward"), ("cost", "cost"), ("pnl_spread", "pnl_spread"),
                           ("pnl_carry", "pnl_carry"), ("pnl_financing", "pnl_financing")):
        np.testing.assert_array_equal(d[col_bt].to_numpy(), ro[col_ro].to_numpy(), err_msg=col_bt)
    np.testing.assert_array_equal(bt.positions.iloc[1:n + 1, 0].to_numpy(), ro.position.to_numpy())
    traded = ro.trade_notional.to_numpy() != 0
    assert traded.sum() == sum(bt.blotter.fill_date <= bt.daily.index[n - 1]) and traded.sum() > 5


def test_sb3_model_through_envpolicy_matches_rollout():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO
    from credit_rl.agents.ppo import sb3_policy
    cfg = CreditSpreadConfig(episode_days=100)
    model = PPO("MlpPolicy", CreditSpreadEnv(cfg), seed=3, device="cpu", n_steps=64, batch_size=32)  # untrained: random-ish
    act = sb3_policy(model)
    ro = rollout(CreditSpreadEnv(cfg), act, seed=5)
    bt = run_backtest(EnvPolicy(act, cfg), market_from_env(cfg, 5), config_from_env(cfg))
    np.testing.assert_array_equal(bt.daily["return"].to_numpy(), ro.reward.to_numpy())


def reference_daily(weights, m, cfg):
    "Bond-by-bond numpy reference of the daily return and cost parts (no kernel)."
    dt, K, k = 1 / 252, cfg.capital_usd, cfg.cost_multiplier
    w0, w1 = weights[:-1], weights[1:]
    pnl = -w0 * m.spread_duration_years[:-1] * np.diff(m.spread_bp, axis=0) / 1e4 + w0 * m.spread_bp[:-1] / 1e4 * dt \
        - w0 * m.financing_spread_bp_per_yr / 1e4 * dt
    q = np.abs(w1 - w0) * K
    sig = m.spread_duration_years[1:] * m.spread_vol_bp_day[1:] / 1e4
    spread = k * np.asarray(trade_cost(q, m.half_spread_bp[1:], 0.0, m.volume_usd[1:]))
    impact = k * (np.asarray(trade_cost(q, 0.0, sig, m.volume_usd[1:], cfg.impact_coef)))
    delay = k * np.asarray(delay_cost_moments(q, sig, cfg.delay_minutes, cfg.informed_share)[0])
    pnl[: m.start] = spread[: m.start] = impact[: m.start] = delay[: m.start] = 0
    return pnl.sum(1) - (spread + impact + delay).sum(1) / K, spread.sum(1) / K, impact.sum(1) / K, delay.sum(1) / K


@pytest.mark.parametrize("mult", [1.0, 2.0, 3.0])
def test_kernel_matches_bond_by_bond_reference_with_delay(mult):
    paths = simulate_spread_paths(SpreadProcessParams(), 400, n_paths=7, seed=11)
    m = market_from_paths(paths, spread_duration_years=np.linspace(1, 12, 7), maturity_years=np.linspace(1.5, 30, 7),
                          financing_spread_bp_per_yr=np.linspace(-20, 60, 7), start=30)
    cfg = BacktestConfig(cost_multiplier=mult, delay_minutes=15.0, informed_share=0.3, capital_usd=3e6, impact_coef=0.7)
    rng = np.random.default_rng(0)
    w = weights_from_targets(rng.choice([-1.0, 0.0, 0.5, 1.0], size=(401, 7)), m.start)
    d = daily_pnl(w, m, cfg)
    ret, spread, impact, delay = reference_daily(w, m, cfg)
    np.testing.assert_allclose(d[:, 0], ret, rtol=0, atol=1e-15)
    np.testing.assert_allclose(d[:, 5:8], np.c_[spread, impact, delay], rtol=1e-12, atol=1e-18)
    assert delay[m.start:].sum() > 0
    r = run_backtest(lambda h, w_: w[h.n_days + 1], m, cfg)       # the same weights through a callable policy
    np.testing.assert_allclose(r.blotter.cost_usd.sum() / cfg.capital_usd, d[:, 4].sum(), rtol=1e-12)
    b = r.blotter
    np.testing.assert_allclose(b.cost_spread_usd + b.cost_impact_usd,
                               mult * np.asarray(trade_cost(b.notional_usd.to_numpy(), b.half_spread_bp.to_numpy(),
                                                            (m.spread_duration_years * m.spread_vol_bp_day / 1e4)[
                                                                np.searchsorted(m.dates, b.fill_date), pd.Index(m.instruments).get_indexer(b.instrument)],
                                                            m.volume_usd[np.searchsorted(m.dates, b.fill_date), pd.Index(m.instruments).get_indexer(b.instrument)],
                                                            0.7)), rtol=1e-12)


@pytest.fixture(scope="module")
def panel():
    return market_from_paths(simulate_spread_paths(SpreadProcessParams(), 700, n_paths=4, seed=5), start=30)


class PeekAtClose:
    "A cheat: targets the weight from tomorrow's spread change."
    def target_weights(self, m):
        s = m.spread_bp
        return np.vstack([np.sign(s[:-1] - s[1:]), np.zeros((1, s.shape[1]))])


def test_no_lookahead_for_every_policy_kind(panel):
    cfg = CreditSpreadConfig()
    policies = [*default_rules(short_weight=-1.0).values(), EnvPolicy(busy_policy, cfg),
                lambda h, w: np.where(h.spread_bp[-1] > h.spread_bp[-10], 1.0, -1.0) * (1 + 0 * w)]
    for p in policies:
        for t in (30, 31, 250, 500, 698):
            assert check_no_lookahead(p, panel, t), (p, t)


def test_lookahead_check_catches_a_cheat(panel):
    assert not all(check_no_lookahead(PeekAtClose(), panel, t) for t in (100, 200, 300))


def test_sequential_policy_only_sees_the_past(panel):
    seen = []
    def spy(history, weights):
        seen.append(history.spread_bp.shape[0]); return np.ones(history.n_bonds)
    decide(spy, panel)
    assert seen == list(range(panel.start + 1, panel.n_days + 1))    # day t sees rows 0..t


@pytest.mark.parametrize("n,train,test,emb,expanding", [(1000, 300, 100, 10, False), (1000, 300, 100, 0, True),
                                                         (777, 100, 50, 21, False), (400, 399, 1, 0, False)])
def test_walk_forward_splits_properties(n, train, test, emb, expanding):
    folds = walk_forward_splits(n, train, test, emb, expanding)
    assert folds[0] == Fold(0, 0, train, train + emb, train + emb + test)
    for f in folds:
        assert 0 <= f.train_start < f.train_end <= f.test_start - emb and f.test_end - f.test_start == test
        assert f.test_end <= n and (f.train_start == 0 if expanding else f.train_end - f.train_start == train)
    for a, b in zip(folds, folds[1:]): assert b.test_start == a.test_end
    assert folds[-1].test_end + test > n                              # no further full fold fits


def test_walk_forward_splits_errors():
    with pytest.raises(ValueError, match="no fold fits"): walk_forward_splits(100, 90, 20)
    with pytest.raises(ValueError, match="embargo_days"): walk_forward_splits(100, 10, 10, -1)
    with pytest.raises(ValueError, match="test_days"): walk_forward_splits(100, 10, 0)


def test_walk_forward_fits_on_train_only_and_matches_full_backtest(panel):
    folds = walk_forward_splits(panel.n_days, 200, 100, 20)
    seen = []
    def fit(train):
        seen.append((train.dates[0], train.dates[-1], train.n_bonds)); return PassiveIG()
    wf = walk_forward(fit, panel, folds)
    assert [(s[0], s[1]) for s in seen] == [(panel.dates[f.train_start], panel.dates[f.train_end - 1]) for f in folds]
    assert len(wf.table) == 3 * len(folds) and set(wf.table.cost_multiplier) == {1.0, 2.0, 3.0}
    full = run_backtest(PassiveIG(), replace(panel, start=0)).returns
    for f, by_k in zip(folds, wf.results):
        r = by_k[1.0].returns
        assert len(r) == f.test_end - f.test_start and r.index[0] == panel.dates[f.test_start + 1]
        np.testing.assert_array_equal(r.iloc[1:].to_numpy(), full.loc[r.index[1:]].to_numpy())  # after the entry day
        assert r.iloc[0] < full.loc[r.index[0]]                                                    # the entry cost
    oos = wf.returns(2.0)
    assert oos.index.is_unique and oos.index.is_monotonic_increasing


def test_cost_multipliers_scale_costs_only(panel):
    res = cost_scenarios(ValueRule(lookback_days=60, short_weight=-1.0), panel)
    base = res[1.0].daily
    assert base.cost.sum() > 0
    for k in (2.0, 3.0):
        d = res[k].daily
        np.testing.assert_allclose(d.cost.to_numpy(), k * base.cost.to_numpy(), rtol=1e-13)
        np.testing.assert_array_equal(d.pnl_spread.to_numpy(), base.pnl_spread.to_numpy())
        np.testing.assert_array_equal(res[k].positions.to_numpy(), res[1.0].positions.to_numpy())
    frictionless = run_backtest(ValueRule(lookback_days=60, short_weight=-1.0), panel, BacktestConfig(include_costs=False))
    assert frictionless.daily.cost.abs().sum() == 0


def test_strongest_rule(panel):
    table, results = compare_policies({"passive": PassiveIG(), "carry": CarryRule(), "mom": MomentumRule(lookback_days=21)}, panel)
    for k in (1.0, 2.0, 3.0):
        sub = table[table.cost_multiplier == k]
        assert strongest_rule(table, cost_multiplier=k) == sub.loc[sub.sharpe.idxmax(), "policy"]
        assert strongest_rule(results, cost_multiplier=k) == strongest_rule(table, cost_multiplier=k)
    assert strongest_rule(table, metric="max_drawdown", rules=["carry", "mom"]) in ("carry", "mom")
    with pytest.raises(ValueError, match="metric"): strongest_rule(table, metric="nope")
    with pytest.raises(ValueError, match="cost_multiplier"): strongest_rule(table, cost_multiplier=5.0)


def test_outputs_blotter_positions_exposures(panel):
    r = run_backtest(MomentumRule(lookback_days=21, short_weight=-1.0), panel, BacktestConfig(capital_usd=2e6))
    b = r.blotter
    assert set(b.side) == {"buy", "sell"} and (b.notional_usd > 0).all()
    assert ((b.side == "buy") == (b.weight_after > b.weight_before)).all()
    np.testing.assert_allclose(b.notional_usd, (b.weight_after - b.weight_before).abs() * 2e6)
    assert (b.fill_date > b.decision_date).all() and (b.cost_usd > 0).all()
    np.testing.assert_allclose(r.exposures.to_numpy(), r.positions.to_numpy() * panel.spread_duration_years[panel.start:])
    np.testing.assert_allclose(r.daily.spread_duration_exposure.to_numpy(), r.exposures.iloc[:-1].sum(axis=1).to_numpy())
    d = r.daily
    np.testing.assert_allclose(d["return"], d.pnl_spread + d.pnl_carry + d.pnl_financing - d.cost, atol=1e-16)
    np.testing.assert_allclose(d.traded_notional_usd.sum(), b.notional_usd.sum())
    m = r.metrics()
    assert math.isfinite(m["sharpe"]) and m["turnover"] > 0 and m["cost_per_yr"] > 0


def test_market_checks_name_the_field(panel):
    with pytest.raises(ValueError, match="half_spread_bp"):
        check_market(replace(panel, half_spread_bp=-panel.half_spread_bp))
    bad = panel.spread_bp.copy(); bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="spread_bp is not finite at row 5"):
        check_market(replace(panel, spread_bp=bad))
    with pytest.raises(ValueError, match="financing_spread_bp_per_yr"):
        check_market(replace(panel, financing_spread_bp_per_yr=np.zeros(2)))
    with pytest.raises(ValueError, match="non-finite target"):
        decide(lambda h, w: np.full(h.n_bonds, np.inf), panel)


def test_market_from_frame_fallbacks_and_given_columns():
    idx = pd.bdate_range("2020-01-01", periods=300)
    s = 100 + np.cumsum(np.random.default_rng(1).normal(0, 2, 300))
    f = pd.DataFrame(dict(oas=s, hs=np.full(300, 4.0), vol=np.full(300, 3.0), volume=np.full(300, 5e7)), index=idx)
    given = market_from_frame(f, "oas", half_spread_col="hs", spread_vol_col="vol", volume_col="volume")
    assert given.fallbacks == () and (given.half_spread_bp == 4.0).all() and (given.volume_usd == 5e7).all()
    filled = market_from_frame(f.assign(vix=np.r_[np.full(150, 15.0), np.full(150, 51.35)]), "oas", vix_col="vix")
    assert len(filled.fallbacks) == 3
    assert filled.half_spread_bp[200, 0] > filled.half_spread_bp[100, 0]            # VIX stress widens the fallback
    assert filled.volume_usd[200, 0] == pytest.approx(3e6 / 1.5)
    np.testing.assert_allclose(filled.spread_vol_bp_day[40, 0], np.sqrt(np.mean(np.diff(s[20:41]) ** 2)))  # trailing RMS, incl. day
    np.testing.assert_allclose(filled.spread_vol_bp_day[5, 0], np.sqrt(np.mean(np.diff(s[:6]) ** 2)))  # warm-up: no back-fill
    with pytest.raises(ValueError, match="spread_col"): market_from_frame(f, "nope")


@pytest.fixture(scope="module")
def ig_index():
    d = shared_data_dir()
    if d is None or not (d / "BAMLC0A0CM.csv").exists(): pytest.skip("shared data folder not available")
    from credit_rl.market.data import load_fred_csv
    ig, _ = load_fred_csv(d / "BAMLC0A0CM.csv", unit="bp", name="ig_oas_bp")
    vix, _ = load_fred_csv(d / "VIXCLS.csv", unit="index", name="vix")
    return market_from_frame(ig.dropna().join(vix, how="left"), "ig_oas_bp", vix_col="vix", instrument="US IG")


def test_real_ig_passive_excess_return(ig_index):
    r = run_backtest(PassiveIG(), ig_index)
    m = r.metrics()
    # long IG credit, rates hedged, 6.5y spread duration: a small positive excess return with drawdowns in 2008/2020
    assert 0.0 < m["annual_return"] < 0.03 and m["max_drawdown"] < -0.1
    gfc = r.returns.loc["2008-09-01":"2008-12-31"].sum()
    assert gfc < -0.05
    assert len(r.blotter) == 1


def test_real_ig_walk_forward_no_lookahead(ig_index):
    for rule in default_rules(short_weight=-1.0).values():
        assert check_no_lookahead(rule, ig_index, 5000)
    folds = walk_forward_splits(ig_index.n_days, 3 * 252, 252, 21)
    wf = walk_forward(lambda train: ValueRule(), ig_index, folds, multipliers=(1.0,))
    assert len(wf.returns()) == 252 * len(folds)


def test_cost_model_half_spread_per_trade_size_and_stress(panel):
    from credit_rl.costs import client_half_spread_bp
    calm = replace(panel, liquidity_stress=np.zeros_like(panel.spread_bp), rating=("BBB",) * panel.n_bonds)
    crisis = replace(calm, liquidity_stress=np.ones_like(panel.spread_bp))
    rule = MomentumRule(lookback_days=21)
    for capital in (5e5, 2e6, 10e6):                     # odd lot, round lot, block
        cfg = BacktestConfig(capital_usd=capital, half_spread_source="cost_model", client="retail")
        b0, b1 = run_backtest(rule, calm, cfg).blotter, run_backtest(rule, crisis, cfg).blotter
        mat = calm.maturity_years[np.searchsorted(calm.dates, b0.fill_date), pd.Index(calm.instruments).get_indexer(b0.instrument)]
        np.testing.assert_allclose(b0.half_spread_bp, client_half_spread_bp(b0.notional_usd.to_numpy(), rating="BBB",
                                                                           maturity_years=mat, client="retail"), rtol=1e-12)
        np.testing.assert_allclose(b1.half_spread_bp, client_half_spread_bp(b1.notional_usd.to_numpy(), rating="BBB",
                                                                           maturity_years=mat, client="retail", stress=1.0), rtol=1e-12)
        assert (b1.half_spread_bp > b0.half_spread_bp).all()
    with pytest.raises(ValueError, match="rating"):
        run_backtest(rule, replace(calm, rating=None), BacktestConfig(half_spread_source="cost_model"))


def test_envpolicy_batch_equals_per_bond(panel):
    cfg = CreditSpreadConfig()
    batched = EnvPolicy(lambda o: np.where(o[:, 1] < -0.5, 2, np.where(o[:, 1] > 1.0, 0, 1)), cfg, batch=True)
    np.testing.assert_array_equal(decide(batched, panel), decide(EnvPolicy(busy_policy, cfg), panel))


def test_etf_excess_returns_real():
    d = shared_data_dir()
    if d is None or not (d / "etf_adjclose_daily.csv").exists(): pytest.skip("shared data folder not available")
    from credit_rl.backtest.engine import etf_excess_returns
    from credit_rl.market.data import load_csv
    px, _ = load_csv(d / "etf_adjclose_daily.csv", columns=["LQD", "IEF"])
    ex = etf_excess_returns(px)
    assert ex.index[0].year == 2002 and np.isfinite(ex).all()
    assert ex.loc["2008-09-01":"2008-12-31"].sum() < -0.05          # credit sold off in the GFC, rates hedged
    with pytest.raises(ValueError, match="HYGX"): etf_excess_returns(px, etf="HYGX")


def test_backtest_market_is_a_panel_of_bond_paths():
    from credit_rl.market.path import BondPath
    from credit_rl.market.synthetic import MarketParams, UniverseParams
    paths = simulate_spread_paths(SpreadProcessParams(), 120, n_paths=3, seed=4)
    m = market_from_paths(paths, start=20)
    for i in range(3):
        p = BondPath.from_spread_paths(paths, i)
        for k in ("spread_bp", "half_spread_bp", "spread_vol_bp_day", "volume_usd"):
            assert np.array_equal(getattr(m, k)[:, i], getattr(p, k))
        assert np.array_equal(m.liquidity_stress[:, i], p.stress)
    sims = [BondPath.from_simulator(MarketParams(), UniverseParams(), 200, seed=s, rating=r) for s, r in ((1, "A"), (2, "BB"))]
    panel = BacktestMarket.from_paths(sims, spread_duration_years=[6.0, 4.0], maturity_years=[8.0, 5.0], rating=("A", "BB"), start=20)
    assert panel.n_bonds == 2 and (panel.half_spread_bp > 0).all()           # NaN half-spread -> cost grid
    assert panel.half_spread_bp[:, 1].mean() > panel.half_spread_bp[:, 0].mean()   # HY wider than IG
    assert np.isfinite(run_backtest(lambda h, w: np.ones(h.n_bonds), panel).returns.to_numpy()).all()
