"""The dynamic-programming optimum of the discretisable spread problem (credit_rl.agents.dp, credit_rl.envs.spread_grid).

Exactness against brute force and a closed form, Monte Carlo vs exact values, the env against its MDP,
the score's anchors (DP = 1, no trade = 0), and (slow) SB3 PPO's score after a 60 s training budget.
The batched numba twin against the plain env bit for bit (every config, across autoresets), its per-env streams
independent of N, budgeted training (stops within the CPU budget, scores the greedy policy it returns) and (slow)
PPO on the batched twin after 60 CPU s.
"""
import math

import numpy as np
import pytest

from credit_rl.agents.dp import (backward_induction, constant_policy, dp_policy, enumerate_policy_values, episode_return,
                          episode_seeds, evaluate_policy, evaluate_scores, expected_return, expected_reward,
                          no_trade_policy, policy_table, score, threshold_policy)
from credit_rl.envs.spread_grid import GridCreditSpreadEnv, GridSpreadConfig, grid_mdp

TINY = dict(n_grid=3, positions=(0.0, 1.0), half_life_days=2.0, log_vol_per_sqrt_yr=1.0, half_spread_bp=2.0,
            impact_coef=0.0)
CONFIGS = {
    "default": GridSpreadConfig(),
    "long_only": GridSpreadConfig(positions=(0.0, 1.0)),
    "half_life_5d": GridSpreadConfig(half_life_days=5.0, n_grid=21),
    "half_life_20d_costly": GridSpreadConfig(half_life_days=20.0, half_spread_bp=25.0),
    "five_positions_start_long": GridSpreadConfig(positions=(-1.0, -0.5, 0.0, 0.5, 1.0), initial_position=1.0),
}


def test_brute_force_tiny_T3():
    "All 32,768 deterministic Markov policies of a tiny MDP: the best equals DP, none beats it."
    mdp = grid_mdp(GridSpreadConfig(episode_days=3, **TINY))
    values = enumerate_policy_values(mdp)
    assert len(values) == 2**3 * 2**6 * 2**6
    dp = backward_induction(mdp).expected_return
    assert dp > 0                                          # trading pays here, so the check is not 0 = 0
    assert values.max() == pytest.approx(dp, abs=1e-16)
    assert (values <= dp + 1e-16).all()
    assert (values < dp - 1e-6).mean() > 0.99              # almost every other policy is clearly worse


@pytest.mark.slow
def test_brute_force_tiny_three_positions():
    "Positions (-1, 0, 1), T = 2: all 531,441 policies."
    mdp = grid_mdp(GridSpreadConfig(episode_days=2, **{**TINY, "positions": (-1.0, 0.0, 1.0)}))
    values = enumerate_policy_values(mdp)
    assert len(values) == 3**3 * 3**9
    assert values.max() == pytest.approx(backward_induction(mdp).expected_return, abs=1e-16)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_dp_beats_or_ties_simple_rules(name):
    "Exact expected returns: DP >= no trade, every constant position, threshold rules; DP = its own evaluation."
    mdp = grid_mdp(CONFIGS[name])
    sol = backward_induction(mdp)
    rules = [no_trade_policy(mdp)] + [constant_policy(mdp, w) for w in mdp.positions] + \
            [threshold_policy(mdp, e) for e in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)]
    values = [expected_return(policy_table(fn, mdp), mdp) for fn in rules]
    assert sol.expected_return >= max(values) - 1e-15
    assert expected_return(sol.policy, mdp) == pytest.approx(sol.expected_return, abs=1e-15)
    np.testing.assert_allclose(evaluate_policy(sol.policy, mdp), sol.value[0], atol=1e-15)
    np.testing.assert_array_equal(policy_table(dp_policy(mdp), mdp), sol.policy)


def test_zero_costs_closed_form():
    """Without costs the optimum is myopic. Decide at t, fill at t+1: the weight chosen on day t earns the P&L
    of day t+1 -> t+2, whose expectation given s_t is h(s) = sum_s' P[s, s'] g(s'), g(s) = expected one-day
    P&L per unit at spread s. So pi(s) = sign(h(s)) and, from the stationary law, the value is
    (T-1)·sum_s mu(s)|h(s)| (the first day earns nothing: the initial weight is 0)."""
    cfg = GridSpreadConfig(half_spread_bp=0.0, impact_coef=0.0)
    mdp = grid_mdp(cfg)
    g = expected_reward(mdp)[:, 2, 2]                         # long (+1) held, not trading
    h = mdp.transition @ g
    closed_form = (cfg.episode_days - 1) * float(mdp.initial_dist @ np.abs(h))
    sol = backward_induction(mdp)
    assert sol.expected_return == pytest.approx(closed_form, rel=1e-12)
    target = np.where(h > 0, 2, np.where(h < 0, 0, 1))
    for t in range(cfg.episode_days - 1):
        for i in range(3): np.testing.assert_array_equal(sol.policy[t, :, i], target)
    assert h[-1] > 0 > h[0]                                   # wide spreads are a buy, tight ones a sell


def test_env_samples_the_mdp():
    "Default config: every env reward equals r[s, i, j, s']; transition counts match P (binomial tests)."
    cfg = GridSpreadConfig(episode_days=40)
    env, rng = GridCreditSpreadEnv(cfg), np.random.default_rng(5)
    m = env.mdp
    counts, max_err, starts = np.zeros_like(m.transition), 0.0, np.zeros(len(m.spread_bp))
    for ep in range(2500):
        obs, info = env.reset(seed=10_000 + ep)
        s, i, done = info["spread_index"], m.initial_position_index, False
        starts[s] += 1
        while not done:
            j = int(rng.integers(3))
            obs, r, done, _, info = env.step(j)
            s1 = info["spread_index"]
            counts[s, s1] += 1
            max_err = max(max_err, abs(r - m.reward[s, i, j, s1]))
            s, i = s1, j
    assert max_err < 1e-15
    # exact two-sided binomial test per cell (rare jumps have tiny p: no normal approximation), Bonferroni
    from scipy import stats
    n = counts.sum(1).astype(int)
    pvals = [stats.binomtest(int(counts[s, s1]), n[s], m.transition[s, s1]).pvalue
             for s in range(len(n)) if n[s] > 0 for s1 in range(len(n))]
    assert min(pvals) * len(pvals) > 1e-3
    assert n.min() > 0 and counts.sum() == 2500 * 40
    # the start law is the stationary one: chi-square over the grid points with expected count >= 5
    exp_ = starts.sum() * m.initial_dist
    keep = exp_ >= 5
    chi2 = float((((starts - exp_) ** 2 / exp_)[keep]).sum())
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4


def test_monte_carlo_matches_exact_value():
    "Mean MC return of dp_policy over 4,000 episodes within 4 standard errors of the exact optimum."
    cfg = GridSpreadConfig()
    mdp, env = grid_mdp(cfg), GridCreditSpreadEnv(cfg)
    pol = dp_policy(mdp)
    mc = np.array([episode_return(env, pol, s) for s in episode_seeds(2024, 4000)])
    se = mc.std(ddof=1) / math.sqrt(len(mc))
    exact = backward_induction(mdp).expected_return
    assert abs(mc.mean() - exact) < 4 * se
    assert se < 0.05 * exact                               # the check has power: 4 se < 20 % of the value


def test_score_anchors_with_common_random_numbers():
    "DP scores 1 and no trade 0 on every block (same episodes); a threshold rule lands strictly in between."
    cfg = GridSpreadConfig()
    mdp = grid_mdp(cfg)
    dp = evaluate_scores(dp_policy(mdp), cfg, seeds=range(5), episodes_per_seed=20)
    np.testing.assert_allclose(dp["per_seed"]["score"], 1.0, atol=1e-12)
    assert dp["exact_score"] == pytest.approx(1.0, abs=1e-12)
    nt = evaluate_scores(no_trade_policy(mdp), cfg, seeds=range(5), episodes_per_seed=20)
    np.testing.assert_array_equal(nt["per_seed"]["score"], 0.0)
    thr = evaluate_scores(threshold_policy(mdp, 1.5), cfg, seeds=range(5), episodes_per_seed=100)
    assert 0.3 < thr["exact_score"] < 0.95
    lo, hi = thr["ci95"]
    assert lo < hi and lo - 0.1 < thr["exact_score"] < hi + 0.1


def test_bad_inputs():
    mdp = grid_mdp(GridSpreadConfig())
    with pytest.raises(ValueError, match="R_dp - R_no_trade must be > 0"): score(1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"integer action indices in \[0, 3\)"): evaluate_policy(np.full((15, 3), -1), mdp)
    with pytest.raises(ValueError, match="enumeration is for tiny MDPs"): enumerate_policy_values(mdp)
    with pytest.raises(ValueError, match="weight must be one of positions"): constant_policy(mdp, 0.5)
    with pytest.raises(ValueError, match="initial_position"): GridSpreadConfig(initial_position=2.0)


def test_last_day_never_trades_and_costs_create_a_band():
    "On the last day trading only costs; at the start, with costs, the flat desk holds in a band around theta."
    cfg = GridSpreadConfig()
    mdp = grid_mdp(cfg)
    sol = backward_induction(mdp)
    np.testing.assert_array_equal(sol.policy[-1], np.broadcast_to(np.arange(3), sol.policy[-1].shape))
    flat = sol.policy[0, :, 1]
    mid = len(mdp.spread_bp) // 2
    assert flat[mid] == 1 and flat[0] == 0 and flat[-1] == 2     # hold near theta, short tight, long wide


PPO_60S_FLOOR = 0.8  # above the best threshold rule (exact 0.79); measured 0.90-0.96 over training seeds 1-5


@pytest.mark.slow
def test_ppo_60s_score():
    """SB3 PPO (plain DummyVecEnv, train_ppo_grid's defaults) for 60 s of wall clock: exact score of its
    deterministic policy and the Monte-Carlo score on 5 common-random-number blocks of 200 episodes.

    The bar asserted is the one measured for the set-up (see 44_dp: training seeds 1-5), not the agents
    issue's 0.95/0.98 targets, which need the batched environments."""
    from credit_rl.agents.dp import train_ppo_grid, table_policy
    cfg = GridSpreadConfig()
    mdp = grid_mdp(cfg)
    model = train_ppo_grid(cfg, seconds=60.0, seed=1)
    table = policy_table(lambda obs: int(model.predict(obs, deterministic=True)[0]), mdp)
    exact = score(expected_return(table, mdp), 0.0, backward_induction(mdp).expected_return)
    res = evaluate_scores(table_policy(table, mdp), cfg, seeds=range(100, 105), episodes_per_seed=200)
    print(f"PPO 60 s: {model.num_timesteps} steps, exact score {exact:.3f}, MC {res['score']:.3f} {res['ci95']}")
    assert exact <= 1.0 + 1e-12
    assert exact > PPO_60S_FLOOR
    lo, hi = res["ci95"]
    assert lo - 0.05 < exact < hi + 0.05


# ---- the batched twin and the budgeted agents ----

def _twin_vs_plain(config, n, seed, n_steps, action_seed=0):
    "Step the batched twin and n plain envs with the same random actions; assert bitwise equality; count episodes."
    from credit_rl.envs.spread_grid import GridCreditSpreadVectorEnv
    rng, venv = np.random.default_rng(action_seed), GridCreditSpreadVectorEnv(n, config)
    envs = [GridCreditSpreadEnv(config) for _ in range(n)]
    obs_v, _ = venv.reset(seed=seed)
    assert obs_v.tobytes() == np.stack([e.reset(seed=seed + k)[0] for k, e in enumerate(envs)]).tobytes()
    n_done = 0
    for _ in range(n_steps):
        a = rng.integers(len(config.positions), size=n)
        obs_v, r_v, term_v, trunc_v, info_v = venv.step(a)
        assert not trunc_v.any()
        for k, e in enumerate(envs):
            o, r, term, _, info = e.step(int(a[k]))
            assert r == r_v[k] and term == term_v[k] and info["spread_index"] == info_v["spread_index"][k]
            if term:
                assert o.tobytes() == info_v["final_obs"][k].tobytes()
                o, _ = e.reset(); n_done += 1
            assert o.tobytes() == obs_v[k].tobytes()
    return n_done


@pytest.mark.parametrize("name", list(CONFIGS))
def test_batched_twin_bitwise_equals_plain_env(name):
    "Observations, rewards, terminations, spread indices and final observations equal bit for bit, across autoresets."
    cfg = CONFIGS[name]
    short = GridSpreadConfig(**{**cfg.__dict__, "episode_days": 9})
    assert _twin_vs_plain(short, 16, 1234, 40) == 16 * 4


def test_batched_twin_env_k_does_not_depend_on_n():
    "Env 5 of 64 envs seeded 0 runs the path of env 0 of 1 env seeded 5 (its stream is its own)."
    from credit_rl.envs.spread_grid import GridCreditSpreadSB3VecEnv
    def rewards(n, seed, k):
        v = GridCreditSpreadSB3VecEnv(n, GridSpreadConfig(episode_days=20)); v.seed(seed); v.reset()
        acts = np.random.default_rng(9).integers(3, size=(50, 1))
        return np.array([v.step(np.full(n, a[0]))[1][k] for a in acts])
    assert rewards(64, 0, 5).tobytes() == rewards(1, 5, 0).tobytes()
    assert rewards(64, 0, 5).tobytes() != rewards(64, 0, 6).tobytes()


def test_budgeted_training_stops_in_budget_and_scores_its_greedy_policy():
    from credit_rl.agents.dp import GridPPOConfig, greedy_table, make_grid_ppo, no_trade_return, train_on_budget
    mdp = grid_mdp(GridSpreadConfig())
    r = train_on_budget(make_grid_ppo(GridPPOConfig(n_envs=128, n_steps=16, batch_size=1024, n_epochs=2), GridSpreadConfig(), 3),
                        mdp, budget_s=4.0, eval_every_s=1.0)
    assert r["cpu_s"] <= 4.0 * 1.1 and r["env_steps"] >= 128 * 16
    assert r["curve"]["cpu_s"].is_monotonic_increasing and len(r["curve"]) >= 3
    np.testing.assert_array_equal(r["table"], greedy_table(r["model"], mdp))
    exact = score(expected_return(r["table"], mdp), no_trade_return(mdp), backward_induction(mdp).expected_return)
    assert r["score"] == pytest.approx(exact, abs=1e-12) and r["score"] <= 1 + 1e-12


BATCHED_PPO_60S_FLOOR = 0.95  # measured 0.977-0.990 on training seeds 1-5 (mean 0.984, see 44_dp); the bar 0.98 is for the mean


@pytest.mark.slow
def test_batched_ppo_60_cpu_s_score():
    "PPO on the batched twin with GridPPOConfig() for 60 CPU s of one thread: the greedy policy's exact score."
    from credit_rl.agents.dp import GridPPOConfig, make_grid_ppo, train_on_budget
    r = train_on_budget(make_grid_ppo(GridPPOConfig(), GridSpreadConfig(), seed=1), grid_mdp(GridSpreadConfig()), 60.0)
    print(f"batched PPO: {r['env_steps']:,} steps in {r['cpu_s']:.1f} CPU s: score {r['score']:.4f}")
    assert BATCHED_PPO_60S_FLOOR < r["score"] <= 1 + 1e-12
