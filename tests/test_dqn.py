"""UpgradedDQN (credit_rl.agents.dqn): sum-tree, prioritized replay, n-step returns, double target, dueling head, the 16
switch combinations on CreditSpreadEnv, determinism, save/load, and a 1M-transition buffer."""
import itertools
import time

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from scipy import stats
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import NStepReplayBuffer

from credit_rl.config import ParamsError, from_dict
from credit_rl.agents.dqn import (DQNConfig, DuelingHead, DuelingQNetwork, PrioritizedReplayBuffer, ScaleReward, SumTree, TrainDQNParams,
                           UpgradedDQN, make_dqn, n_step_returns, replay_memory_bytes, td_targets, train_dqn)
from credit_rl.envs.spread import CreditSpreadEnv
from credit_rl.envs.spread_vec import CreditSpreadSB3VecEnv

OBS, ACT = spaces.Box(-10, 10, (6,), np.float32), spaces.Discrete(3)


def weights(model) -> th.Tensor:
    return th.nn.utils.parameters_to_vector(model.q_net.parameters()).detach().clone()


# ---------------------------------------------------------------- sum-tree
@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 4097])
def test_sum_tree_matches_brute_force(n):
    rng = np.random.default_rng(n)
    tree, p, was_set = SumTree(n), np.zeros(n), np.zeros(n, bool)
    for _ in range(20):
        idx = rng.integers(0, n, 17)
        pr = rng.random(17) * (rng.random(17) > 0.2)          # some zeros
        tree.update(idx, pr)
        for i, v in zip(idx, pr): p[i] = v
        was_set[idx] = True
        assert tree.total == pytest.approx(p.sum(), rel=1e-12, abs=1e-12)
        assert tree.min() == p[was_set].min()
        np.testing.assert_array_equal(tree[np.arange(n)], p)
        if p.sum() > 0:
            u = rng.random(500) * p.sum()
            found = tree.find(u)
            np.testing.assert_array_equal(found, np.searchsorted(np.cumsum(p), u, side="right"))
            assert (p[found] > 0).all()                        # never a zero-priority leaf


def test_sum_tree_edge_and_errors():
    t = SumTree(5); t.update([4], [1.0])                      # only the last leaf has mass
    np.testing.assert_array_equal(t.find([0.0, 0.5, np.nextafter(1.0, 0)]), [4, 4, 4])
    with pytest.raises(IndexError, match=r"\[0, 5\)"): t.update([5], [1.0])
    with pytest.raises(ValueError, match="finite"): t.update([0], [-1.0])
    with pytest.raises(ValueError, match="n_leaves"): SumTree(0)


# ---------------------------------------------------------------- prioritized replay
def filled_per(n_envs=3, rows=20, **kw):
    buf = PrioritizedReplayBuffer(rows * n_envs, OBS, ACT, "cpu", n_envs=n_envs, **kw)
    for t in range(rows):                                      # obs encodes (row, env) so samples can be checked
        obs = np.array([[t, e, 0, 0, 0, 0] for e in range(n_envs)], np.float32)
        buf.add(obs, obs + np.float32(0.5), np.arange(n_envs) % 3, np.full(n_envs, t, np.float32), np.zeros(n_envs, bool),
                [{} for _ in range(n_envs)])
    return buf


def test_per_frequencies_proportional_to_priority_alpha():
    buf = filled_per(n_envs=3, rows=4, alpha=0.6)              # 12 transitions
    td = np.linspace(0.1, 3.0, 12)
    buf.update_priorities(np.arange(12), td)
    np.random.seed(123)
    n_draws = 240_000
    counts = np.bincount(np.concatenate([buf.sample(120).leaves for _ in range(n_draws // 120)]), minlength=12)
    p = (td + buf.eps) ** 0.6; p /= p.sum()
    chi2 = ((counts - n_draws * p) ** 2 / (n_draws * p)).sum()
    assert chi2 < stats.chi2.ppf(0.999, 11), chi2
    uniform = np.full(12, 1 / 12)
    assert ((counts - n_draws * uniform) ** 2 / (n_draws * uniform)).sum() > 500   # the check has power


def test_per_sample_rows_envs_weights_and_new_max_priority():
    buf = filled_per(n_envs=3, rows=20, alpha=0.5, beta0=0.4)
    np.random.seed(0)
    s = buf.sample(64)
    rows, envs = s.leaves // 3, s.leaves % 3
    np.testing.assert_array_equal(s.observations[:, 0].numpy(), rows)      # sample at the drawn (row, env)
    np.testing.assert_array_equal(s.observations[:, 1].numpy(), envs)
    np.testing.assert_array_equal(s.actions.numpy().ravel(), envs % 3)
    np.testing.assert_array_equal(s.weights.numpy(), 1.0)                   # all at max priority: weights 1
    td = np.random.default_rng(1).random(64) * 5
    buf.update_priorities(s.leaves, td)
    buf.beta = 0.7
    s2 = buf.sample(32)
    n, total = 60, buf.tree.total
    P = buf.tree[s2.leaves] / total
    expected = (n * P) ** -0.7 / (n * buf.tree.min() / total) ** -0.7
    np.testing.assert_allclose(s2.weights.numpy().ravel(), expected, rtol=1e-5)
    assert s2.weights.max() <= 1.0 + 1e-6
    buf.add(np.zeros((3, 6)), np.zeros((3, 6)), np.zeros(3), np.zeros(3), np.zeros(3, bool), [{}] * 3)  # row 0 again
    np.testing.assert_allclose(buf.tree[[0, 1, 2]], buf.max_priority ** 0.5)
    assert buf.max_priority == pytest.approx(td.max() + buf.eps)


def test_max_priority_follows_td_error_scale():
    buf = filled_per(n_envs=2, rows=5)
    assert buf.max_priority == 1.0                                          # placeholder before any update
    buf.update_priorities([0, 1], [2e-4, 1e-3])                             # decimal-return TD errors
    assert buf.max_priority == pytest.approx(1e-3 + buf.eps)
    row = buf.pos                                                           # the buffer is full: overwrites row 0
    buf.add(np.zeros((2, 6)), np.zeros((2, 6)), np.zeros(2), np.zeros(2), np.zeros(2, bool), [{}] * 2)
    np.testing.assert_allclose(buf.tree[[2 * row, 2 * row + 1]], (1e-3 + buf.eps) ** buf.alpha)
    buf.update_priorities([2], [5e-4])
    assert buf.max_priority == pytest.approx(1e-3 + buf.eps)               # a running maximum from then on


def test_per_argument_errors_name_the_field():
    for kw, field in [(dict(alpha=1.5), "alpha"), (dict(beta0=-0.1), "beta0"), (dict(eps=0.0), "eps"), (dict(n_steps=0), "n_steps")]:
        with pytest.raises(ValueError, match=field): PrioritizedReplayBuffer(10, OBS, ACT, "cpu", **kw)
    with pytest.raises(ValueError, match="empty"): PrioritizedReplayBuffer(10, OBS, ACT, "cpu").sample(4)


# ---------------------------------------------------------------- n-step returns
def test_n_step_hand_trajectory_two_envs():
    # env 0: r = 1, 2, 4, 8, 16 truncated after t=1, terminated at t=3; env 1: r = 1 each day, no end; newest row = 4
    r = np.array([[1, 1], [2, 1], [4, 1], [8, 1], [16, 1]], np.float32)
    d = np.array([[0, 0], [1, 0], [0, 0], [1, 0], [0, 0]], np.float32)
    to = np.array([[0, 0], [1, 0], [0, 0], [0, 0], [0, 0]], np.float32)
    rows, envs = np.array([0, 1, 2, 3, 4, 0, 2, 3]), np.array([0, 0, 0, 0, 0, 1, 1, 1])
    R, disc, last, term = n_step_returns(r, d, to, rows, envs, 3, 0.5, last_row=4)
    np.testing.assert_allclose(R, [1 + 1, 2, 4 + 4, 8, 16, 1 + .5 + .25, 1 + .5 + .25, 1 + .5])
    np.testing.assert_allclose(disc, [.25, .5, .25, .5, .5, .125, .125, .25])
    np.testing.assert_array_equal(last, [1, 1, 3, 3, 4, 2, 4, 4])
    np.testing.assert_array_equal(term, [0, 0, 1, 1, 0, 0, 0, 0])          # truncation bootstraps, termination not
    R1, disc1, last1, _ = n_step_returns(r, d, to, rows, envs, 1, 0.5, last_row=4)
    np.testing.assert_allclose(R1, r[rows, envs]); np.testing.assert_allclose(disc1, 0.5); np.testing.assert_array_equal(last1, rows)


def test_n_step_equals_sb3_nstep_buffer_after_wraparound():
    def fill(buf):
        g = np.random.default_rng(7)
        for t in range(75):
            o, o2 = g.normal(size=(1, 6)).astype(np.float32), g.normal(size=(1, 6)).astype(np.float32)
            end = t % 9 == 8 or t % 13 == 12
            buf.add(o, o2, np.array([t % 3]), np.array([g.normal()], np.float32), np.array([end]),
                    [{"TimeLimit.truncated": t % 13 == 12}])
        return buf
    per, sb3 = fill(PrioritizedReplayBuffer(32, OBS, ACT, "cpu", n_steps=4, gamma=0.8)), fill(NStepReplayBuffer(32, OBS, ACT, "cpu", n_steps=4, gamma=0.8))
    rows = np.arange(32)
    ref = sb3._get_samples(rows)
    R, disc, last, term = n_step_returns(per.rewards, per.dones, per.timeouts, rows, np.zeros(32, int), 4, 0.8, (per.pos - 1) % 32)
    np.testing.assert_allclose(R, ref.rewards.numpy().ravel(), rtol=1e-6)
    np.testing.assert_allclose(disc, ref.discounts.numpy().ravel(), rtol=1e-6)
    np.testing.assert_array_equal(term, ref.dones.numpy().ravel())
    np.testing.assert_array_equal(per.next_observations[last, 0], ref.next_observations.numpy())


# ---------------------------------------------------------------- double target, dueling head
def test_double_target_differs_from_vanilla():
    q_on, q_tg = th.tensor([[3., 2., 0.]]), th.tensor([[1., 5., 2.]])
    r, term = th.tensor([[0.1]]), th.tensor([[0.]])
    assert td_targets(q_on, q_tg, r, term, 0.9, double=False).item() == pytest.approx(0.1 + 0.9 * 5)
    assert td_targets(q_on, q_tg, r, term, 0.9, double=True).item() == pytest.approx(0.1 + 0.9 * 1)
    same = td_targets(q_tg, q_tg, r, term, 0.9, double=True)                 # online = target: no difference
    assert same.item() == pytest.approx(0.1 + 0.9 * 5)


def test_double_dqn_reduces_overestimation_on_noisy_q():
    # true Q(s', a) = 0 for 10 actions; online and target estimates have independent N(0, 1) errors
    g = th.Generator().manual_seed(0)
    on, tg = th.randn(10_000, 10, generator=g), th.randn(10_000, 10, generator=g)
    z = th.zeros(10_000, 1)
    vanilla, double = td_targets(on, tg, z, z, 1.0, False).mean().item(), td_targets(on, tg, z, z, 1.0, True).mean().item()
    assert vanilla > 1.4 and abs(double) < 0.05                               # E max of 10 N(0,1) = 1.54


def test_dueling_head_shape_and_identifiability():
    th.manual_seed(1)
    for arch in ([64, 64], [32], []):
        head = DuelingHead(6, 4, arch)
        x = th.randn(7, 6)
        q = head(x)
        assert q.shape == (7, 4)
        v = head.value_and_advantage(x)[0].squeeze(1)
        np.testing.assert_allclose(q.mean(dim=1).detach().numpy(), v.detach().numpy(), atol=1e-6)
    m = UpgradedDQN("MlpPolicy", CreditSpreadSB3VecEnv(1), dueling=True, buffer_size=100, device="cpu", seed=0)
    assert isinstance(m.q_net, DuelingQNetwork) and isinstance(m.q_net_target, DuelingQNetwork)
    assert m.q_net(th.zeros(2, 6)).shape == (2, 3)


# ---------------------------------------------------------------- the algorithm on CreditSpreadEnv
def tiny(double, dueling, prioritized, n_steps, seed=0, steps=400, n_envs=2):
    th.set_num_threads(1)
    m = UpgradedDQN("MlpPolicy", CreditSpreadSB3VecEnv(n_envs), double=double, dueling=dueling, prioritized=prioritized,
                    n_steps=n_steps, learning_starts=100, buffer_size=2_000, batch_size=16, train_freq=2,
                    target_update_interval=100, seed=seed, device="cpu")
    return m.learn(steps)


@pytest.mark.parametrize("double,dueling,prioritized,n_steps", list(itertools.product([False, True], [False, True], [False, True], [1, 3])))
def test_all_16_switch_combinations_train(double, dueling, prioritized, n_steps):
    m = tiny(double, dueling, prioritized, n_steps)
    assert m.num_timesteps >= 400 and m._n_updates > 50
    assert th.isfinite(weights(m)).all()
    buf = m.replay_buffer
    assert isinstance(buf, PrioritizedReplayBuffer) == prioritized
    assert (buf.n_steps if hasattr(buf, "n_steps") else 1) == n_steps
    assert isinstance(m.q_net, DuelingQNetwork) == dueling
    if prioritized:
        assert 0.4 < buf.beta <= 1.0 and buf.max_priority > 1e-6
        assert np.unique(buf.tree[np.arange(buf.pos * buf.n_envs)]).size > 10   # priorities updated from TD errors


def test_switches_off_is_sb3_dqn():
    th.set_num_threads(1)
    kw = dict(learning_starts=100, buffer_size=2_000, batch_size=16, train_freq=2, target_update_interval=100, seed=4, device="cpu")
    ref = DQN("MlpPolicy", CreditSpreadSB3VecEnv(2), **kw).learn(400)
    off = UpgradedDQN("MlpPolicy", CreditSpreadSB3VecEnv(2), double=False, dueling=False, prioritized=False, n_steps=1, **kw).learn(400)
    assert th.equal(weights(ref), weights(off))
    ref3 = DQN("MlpPolicy", CreditSpreadSB3VecEnv(2), n_steps=3, **kw).learn(400)          # SB3's own n-step path
    off3 = UpgradedDQN("MlpPolicy", CreditSpreadSB3VecEnv(2), double=False, dueling=False, prioritized=False, n_steps=3, **kw).learn(400)
    assert th.equal(weights(ref3), weights(off3))
    dbl = UpgradedDQN("MlpPolicy", CreditSpreadSB3VecEnv(2), double=True, dueling=False, prioritized=False, n_steps=1, **kw).learn(400)
    assert not th.equal(weights(ref), weights(dbl))                           # the switch changes training


def test_same_seed_same_weights_other_seed_differs():
    a, b, c = tiny(True, True, True, 3, seed=5), tiny(True, True, True, 3, seed=5), tiny(True, True, True, 3, seed=6)
    assert th.equal(weights(a), weights(b))
    assert not th.equal(weights(a), weights(c))


def test_train_dqn_deterministic_and_prints(capsys):
    cfg = from_dict(TrainDQNParams, {"seed": 1, "total_timesteps": 600, "env": {"episode_days": 50},
                                     "dqn": {"n_envs": 3, "learning_starts": 100, "buffer_size": 5_000}})
    m1, m2 = train_dqn(cfg, log_every=300), train_dqn(cfg, log_every=300)
    assert th.equal(weights(m1), weights(m2))
    assert "steps/s" in capsys.readouterr().out
    assert m1.env.num_envs == 3 and m1.replay_buffer.n_steps == 3
    assert isinstance(m1.env, ScaleReward) and m1.env.scale == 1e4
    stored = m1.replay_buffer.rewards[: m1.replay_buffer.pos].ravel()
    assert 1e-3 < np.abs(stored).mean() < 1e3                                # bp of capital per day, not decimals
    assert len(m1.ep_info_buffer) >= 9 and max(abs(e["r"]) for e in m1.ep_info_buffer) < 5  # episode returns stay decimal


def test_save_load_round_trip(tmp_path):
    m = tiny(True, True, True, 3)
    m.save(tmp_path / "dqn.zip")
    loaded = UpgradedDQN.load(tmp_path / "dqn.zip", device="cpu")
    assert loaded.double and loaded.dueling and loaded.prioritized and isinstance(loaded.q_net, DuelingQNetwork)
    obs = CreditSpreadEnv().reset(seed=3)[0]
    assert int(loaded.predict(obs, deterministic=True)[0]) == int(m.predict(obs, deterministic=True)[0])
    assert th.equal(weights(loaded), weights(m))


def test_params_validation_names_fields():
    with pytest.raises(ParamsError, match="dqn.n_steps"): from_dict(TrainDQNParams, {"dqn": {"n_steps": 0}}, source="x.yaml")
    with pytest.raises(ParamsError, match="per_beta0"): DQNConfig(per_beta0=2.0)
    with pytest.raises(ParamsError, match="dqn.prioritised"): from_dict(TrainDQNParams, {"dqn": {"prioritised": True}}, source="x.yaml")


# ---------------------------------------------------------------- 1M transitions
def test_one_million_transition_buffer_allocates_and_samples():
    t0 = time.perf_counter()
    n = 1_000_000
    buf = PrioritizedReplayBuffer(n, OBS, ACT, "cpu", n_envs=8, n_steps=3)
    assert replay_memory_bytes(buf) == n * 68 + 2 * 2 * 2**20 * 8               # 68 MB + 34 MB of trees
    rows = buf.buffer_size
    g = np.random.default_rng(0)
    buf.observations[:] = g.normal(size=buf.observations.shape).astype(np.float32)
    buf.rewards[:] = g.normal(size=buf.rewards.shape).astype(np.float32)
    buf.dones[::252] = 1.0
    buf.pos, buf.full = 0, True
    buf.tree.update(np.arange(n), g.random(n) + 0.01)
    np.random.seed(0)
    for _ in range(50):
        s = buf.sample(256)
        assert s.observations.shape == (256, 6) and s.weights.shape == (256, 1)
        buf.update_priorities(s.leaves, g.random(256))
    assert rows * 8 == n and buf.tree.total > 0
    assert time.perf_counter() - t0 < 20, "took > 20 s: mark slow"


# ---------------------------------------------------------------- exact resume (agents' checkpoints)
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, capsys):
    from stable_baselines3.common.callbacks import BaseCallback
    from credit_rl.agents.training import train_with_checkpoints
    cfg = from_dict(TrainDQNParams, {"total_timesteps": 2400, "env": {"episode_days": 60},
                                     "dqn": {"n_envs": 4, "learning_starts": 200, "buffer_size": 10_000}})

    class Interrupt(BaseCallback):                                # stands in for a kill after 1,000 steps
        def _on_step(self): return self.num_timesteps < 1000
    full = train_dqn(cfg, log_every=10**9)
    part = train_with_checkpoints(lambda: make_dqn(cfg), cfg.total_timesteps, tmp_path, 400, callback=Interrupt(), fingerprint=repr(cfg))
    assert part.num_timesteps == 1000
    resumed = train_dqn(cfg, log_every=10**9, checkpoint_dir=tmp_path, checkpoint_every=400)
    assert "resumed from" in capsys.readouterr().out
    assert resumed.num_timesteps == full.num_timesteps
    assert th.equal(weights(resumed), weights(full))
    np.testing.assert_array_equal(resumed.replay_buffer.tree.sums, full.replay_buffer.tree.sums)   # priorities too
