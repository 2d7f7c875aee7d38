"""Walk-forward study (credit_rl.studies.walk_forward on credit_rl.backtest.walkforward): leakage, fold geometry, reproducibility, an end-to-end chapter run.

* leakage: perturbing the history after day t leaves every decision up to t unchanged — for trained agents
  (PPO, DQN, PPO-Lagrangian) as backtest policies, and for the whole study (fold-0 results identical, fold-1
  positions identical up to t);
* folds: train and test windows never overlap and the embargo is respected, for rolling and expanding
  splits; agents are handed only their fold's train rows;
* same seed -> the same tables; another seed -> different ones; checkpointed agents resume to the same tables;
* a tiny end-to-end chapter run through the run registry (slow).
"""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from credit_rl.agents.ppo import PPOConfig
from credit_rl.backtest.engine import check_no_lookahead, decide
from credit_rl.backtest.walkforward import walk_forward_splits
from credit_rl.agents.dqn import DQNConfig
from credit_rl.envs.spread import CreditSpreadConfig
from credit_rl.market.path import realized_vol_bp_day
import credit_rl.studies.walk_forward as wfm
from credit_rl.backtest.walkforward import AgentPolicy, history_env_config, history_market, synthetic_history
from credit_rl.studies.walk_forward import WalkForwardParams, run_walk_forward, train_fold_agent

TINY = dict(history_years=6, train_days=600, test_days=250, embargo_days=10, agents=["ppo"], ppo_timesteps=512,
            ppo=PPOConfig(n_envs=2, n_steps=128, batch_size=64, n_epochs=2), env=CreditSpreadConfig(episode_days=126),
            n_resamples=200)


def tiny_params(**kw) -> WalkForwardParams:
    return WalkForwardParams(**(TINY | kw))


@pytest.fixture(scope="module")
def tiny_study():
    return run_walk_forward(tiny_params(), log=lambda s: None)


# ---------------------------------------------------------------- folds

@pytest.mark.parametrize("expanding", [False, True])
@pytest.mark.parametrize("n_days,train,test,embargo", [(1000, 300, 100, 0), (1000, 300, 100, 21), (5000, 1000, 333, 5), (760, 500, 250, 10)])
def test_folds_never_overlap_and_respect_embargo(n_days, train, test, embargo, expanding):
    folds = walk_forward_splits(n_days, train, test, embargo, expanding)
    for f in folds:
        assert f.train_end + embargo == f.test_start, "embargo gap"
        assert f.train_start < f.train_end <= f.test_start < f.test_end <= n_days
        assert f.test_end - f.test_start == test
        assert f.train_start == 0 if expanding else f.train_end - f.train_start == train
    for a, b in zip(folds, folds[1:]):
        assert a.test_end <= b.test_start, "test windows overlap"
        assert b.train_end <= b.test_start - embargo
    # as many folds as fit
    assert folds[-1].test_end + test > n_days


def test_study_folds_dates(tiny_study):
    p, f = tiny_params(), tiny_study.folds
    assert (f.train_to < f.test_from).all()
    for _, r in f.iterrows():   # business-day history: days strictly between train end and test start = embargo
        assert len(pd.bdate_range(r.train_to, r.test_from)) - 2 == p.embargo_days
    assert (f.test_from.iloc[1:].to_numpy() >= f.test_to.iloc[:-1].to_numpy()).all(), "test windows overlap"
    days = tiny_study.returns.query("policy == 'passive_ig' and cost_multiplier == 1.0").date
    assert days.is_unique and days.is_monotonic_increasing and len(days) == len(f) * p.test_days
    for _, r in f.iterrows():   # every out-of-sample day lies in its fold's test window
        d = tiny_study.returns.query(f"fold == {r.fold}").date
        assert d.min() > r.test_from and d.max() <= r.test_to


def test_agents_see_only_their_train_rows(monkeypatch):
    "The fit of every agent gets exactly rows [train_start, train_end) of its fold — checked with a stub trainer."
    seen = []

    class Flat:
        def predict(self, obs, deterministic=True): return np.array(1), None

    def stub(kind, train_market, p, checkpoint_dir=None, log_every=None):
        seen.append((kind, train_market.dates[0], train_market.dates[-1], train_market.n_days + 1))
        return AgentPolicy(Flat(), history_env_config(p.env), kind)

    monkeypatch.setattr(wfm, "train_fold_agent", stub)
    p = tiny_params(agents=["ppo", "dqn", "constrained"])
    study = run_walk_forward(p, log=lambda s: None)
    assert len(seen) == 3 * len(study.folds)
    for kind, first, last, n in seen:
        fold = [i for i, r in study.folds.iterrows() if r.train_to == last]
        assert fold, f"{kind}: train rows end on {last}, not a fold's train end"
        r = study.folds.iloc[fold[0]]
        assert first == r.train_from and n == r.train_days
        assert last < r.test_from
    flat = study.overall_table.query("kind == 'agent'")
    assert (flat.days_in_market == 0).all() and (flat.annual_return == 0).all() and (flat.sharpe == 0).all()


# ---------------------------------------------------------------- leakage

@pytest.fixture(scope="module")
def history_and_market():
    p = tiny_params()
    h = synthetic_history(p.env, p.history_years, p.seed)
    return p, h, history_market(h, history_env_config(p.env))


@pytest.mark.parametrize("kind", ["ppo", "dqn", "constrained"])
def test_trained_agent_decisions_ignore_the_future(kind, history_and_market):
    p, h, m = history_and_market
    p = replace(p, ppo_timesteps=512, dqn_timesteps=600, constrained_timesteps=512,
                dqn=DQNConfig(n_envs=2, buffer_size=5_000, learning_starts=100))
    pol = train_fold_agent(kind, m.rows(0, 600, start=0), p)
    test = m.rows(0, 1100, start=610)
    for t in (610, 700, 900, 1098):
        assert check_no_lookahead(pol, test, t), f"{kind}: decisions up to {t} changed when rows after {t} were perturbed"


def test_peeking_agent_is_caught(history_and_market):
    "The check can fail: an 'agent' whose env frame is cut too late (it sees tomorrow) is detected."
    p, h, m = history_and_market

    class Wide:
        def predict(self, obs, deterministic=True): return np.array(2 if obs[0] > 0.0 else 0), None

    class Peeking(AgentPolicy):   # observation of day t built on a frame shifted by one day: reads day t+1
        def target_weights(self, market):
            shifted = replace(market, spread_bp=np.vstack([market.spread_bp[1:], market.spread_bp[-1:]]))
            return super().target_weights(shifted)

    pol = Peeking(Wide(), history_env_config(p.env))
    test = m.rows(0, 1100, start=610)
    assert check_no_lookahead(AgentPolicy(Wide(), history_env_config(p.env)), test, 800)
    assert not check_no_lookahead(pol, test, 800)


def test_study_unchanged_before_perturbation(tiny_study):
    "Whole pipeline: history perturbed after day t (inside fold 1's test window) -> fold 0 identical, fold 1 identical up to t."
    p = tiny_params()
    h = synthetic_history(p.env, p.history_years, p.seed)
    f1 = tiny_study.folds.iloc[1]
    t_date = h.index[h.index.get_loc(f1.test_from) + 100]
    bumped = h.copy()
    after = bumped.index > t_date
    bumped.loc[after, ["spread_bp", "index_oas_bp"]] *= 1.8
    bumped.loc[after, "vix"] *= 2.5
    bumped.loc[after, "volume_usd"] *= 0.3
    bumped["spread_vol_bp_day"] = realized_vol_bp_day(bumped.spread_bp.to_numpy())
    other = run_walk_forward(p, log=lambda s: None, history=bumped)
    a, b = tiny_study.returns, other.returns
    pd.testing.assert_frame_equal(a[a.fold == 0].reset_index(drop=True), b[b.fold == 0].reset_index(drop=True))
    # positions held through day t are decided on days < t
    sel = lambda r: r[(r.fold == 1) & (r.date <= t_date)].reset_index(drop=True)
    pd.testing.assert_series_equal(sel(a).position, sel(b).position)
    assert not a[(a.fold == 1) & (a.date > t_date)]["return"].equals(b[(b.fold == 1) & (b.date > t_date)]["return"]), \
        "the perturbation did change what comes after t (else this test could not fail)"


# ---------------------------------------------------------------- reproducibility

def test_same_seed_same_table(tiny_study):
    again = run_walk_forward(tiny_params(), log=lambda s: None)
    pd.testing.assert_frame_equal(again.overall_table, tiny_study.overall_table)
    pd.testing.assert_frame_equal(again.fold_table, tiny_study.fold_table)
    pd.testing.assert_frame_equal(again.comparison, tiny_study.comparison)
    other = run_walk_forward(tiny_params(seed=1), log=lambda s: None)
    assert not other.overall_table.sharpe.equals(tiny_study.overall_table.sharpe)


def test_tables_shape_and_intervals(tiny_study):
    o = tiny_study.overall_table
    assert set(o.policy) == {"passive_ig", "carry", "momentum", "value", "ppo"}
    assert sorted(o.cost_multiplier.unique()) == [1.0, 2.0, 3.0]
    for k in ("sharpe", "annual_return", "max_drawdown", "turnover", "sortino", "var_95", "cvar_95", "var_99", "cvar_99"):
        assert (o[f"{k}_lo"] <= o[f"{k}_hi"] + 1e-12).all(), k
    # passive IG pays more costs at 3x than at 1x and the engine's decisions do not depend on costs
    pi = o[o.policy == "passive_ig"].set_index("cost_multiplier")
    assert pi.loc[3.0, "annual_return"] < pi.loc[1.0, "annual_return"] and pi.loc[3.0, "turnover"] == pi.loc[1.0, "turnover"]
    c = tiny_study.comparison
    assert len(c) == 3 and set(c.verdict) <= {"agent better", "agent worse", "no significant difference"}
    assert (c.strongest_rule.isin(["passive_ig", "carry", "momentum", "value"])).all()


def test_checkpoints_resume_finished_agents(tmp_path, tiny_study):
    "With checkpoint_dir, a second run loads every fold's finished agent instead of retraining: same tables."
    p = tiny_params()
    first = run_walk_forward(p, checkpoint_dir=tmp_path, log=lambda s: None)
    assert sorted(x.name for x in tmp_path.iterdir()) == [f"fold_{i}" for i in range(len(first.folds))]
    assert all(list((tmp_path / f"fold_{i}" / "ppo").glob("checkpoint_*.pkl")) for i in range(len(first.folds)))
    lines = []
    second = run_walk_forward(p, checkpoint_dir=tmp_path, log=lines.append)
    pd.testing.assert_frame_equal(second.overall_table, first.overall_table)
    pd.testing.assert_frame_equal(first.overall_table, tiny_study.overall_table)   # checkpointing changes nothing


# ---------------------------------------------------------------- end to end

@pytest.mark.slow
def test_chapter_runs_end_to_end(tmp_path):
    from credit_rl.book.runs import execute_run, load_spec
    spec_file = tmp_path / "walk_forward.yaml"
    params = dict(TINY, ppo={"n_envs": 2, "n_steps": 128, "batch_size": 64, "n_epochs": 2}, env={"episode_days": 126},
                  agents=["ppo", "dqn", "constrained"], dqn_timesteps=512, constrained_timesteps=512,
                  dqn={"n_envs": 2, "buffer_size": 5000, "learning_starts": 100})
    spec_file.write_text(yaml.safe_dump(dict(template="walk_forward", title="wf", params=params)))
    res = execute_run(load_spec(spec_file), reports_dir=tmp_path / "reports", echo=False)
    out = res.path
    for f in ("metrics.json", "overall_table.parquet", "fold_table.parquet", "comparison.parquet", "returns.parquet",
              "timeseries.parquet", "blotter_sample.csv", "folds.parquet"):
        assert (out / f).is_file(), f
    st = wfm.load_study(out)
    assert set(st.overall_table.policy) == {"passive_ig", "carry", "momentum", "value", "ppo", "dqn", "constrained"}
    assert len(st.comparison) == 9
