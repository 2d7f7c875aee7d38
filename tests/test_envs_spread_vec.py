"""CreditSpreadVectorEnv (the batched twin of CreditSpreadEnv): exact trajectory identity with the single env, independence
of the batch size, equality with gymnasium's SyncVectorEnv and SB3's DummyVecEnv, and an SB3 PPO run on the adapter.

Exactness, stated: rewards, P&L parts, market state and spread history are compared bitwise as float64 (their uint64
bit patterns), observations bitwise as float32 (the env's observation dtype). Nothing is compared with a tolerance.
"""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from credit_rl.envs.spread import INFO_NAMES, CreditSpreadConfig, CreditSpreadEnv, env_consts
from credit_rl.envs.spread_vec import (CreditSpreadSB3VecEnv, CreditSpreadVectorEnv, alloc_vec, vec_reset_nb,
                                       vec_step_nb)
from credit_rl.market.bond import kernel_params


def bits(x):
    "Bit pattern of a float array (float64 -> uint64, float32 -> uint32): equality of bits, not of values."
    x = np.ascontiguousarray(x)
    return x.view(np.uint64 if x.dtype == np.float64 else np.uint32)


def assert_bitwise(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    assert np.array_equal(bits(a), bits(b)), f"{what} differs: {a} vs {b}"


CONFIGS = {
    "default, short episodes": CreditSpreadConfig(episode_days=20),
    "frictionless long-only": CreditSpreadConfig(episode_days=15, include_costs=False, positions=(0.0, 1.0),
                                                 initial_position=1.0),
    "bond matures (terminated)": CreditSpreadConfig(maturity_years=12 / 252, positions=(-2.0, -0.5, 0.0, 0.5, 2.0)),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_batched_kernel_equals_single_envs_bitwise(name):
    """Raw kernel vs N plain envs, same seeds and actions, across several autoresets: every number identical."""
    cfg, n, n_steps, seed = CONFIGS[name], 12, 70, 1000
    kp, ec, positions = kernel_params(cfg.market), env_consts(cfg), np.asarray(cfg.positions, dtype=float)
    vs, out = alloc_vec(n)
    vec_reset_nb(np.arange(n, dtype=np.int64) + seed, vs, kp, ec, out.obs)
    envs = [CreditSpreadEnv(cfg) for _ in range(n)]
    assert_bitwise(out.obs, np.array([e.reset(seed=seed + k)[0] for k, e in enumerate(envs)]), "reset obs")
    actions = np.random.default_rng(7).integers(0, len(positions), (n_steps, n))
    n_done = 0
    for t, a in enumerate(actions):
        vec_step_nb(a, positions, vs, kp, ec, out)
        for k, env in enumerate(envs):
            obs, reward, term, trunc, info = env.step(int(a[k]))
            assert_bitwise(out.reward[k], np.float64(reward), f"reward env {k} step {t}")
            assert_bitwise(out.info[:, k], np.array([info[x] for x in INFO_NAMES]), f"info env {k} step {t}")
            assert (out.terminated[k], out.truncated[k]) == (term, trunc)
            if term or trunc:
                n_done += 1
                assert_bitwise(out.final_obs[k], obs, f"final obs env {k} step {t}")
                obs = env.reset()[0]                                       # unseeded, as the autoreset
            assert_bitwise(out.obs[k], obs, f"obs env {k} step {t}")
            assert_bitwise(vs.market[:, k], env._state, f"market state env {k} step {t}")
            assert_bitwise(vs.hist[:, k], env._hist[:, 0], f"spread history env {k} step {t}")
            assert vs.market_seed[k] == env.market_seed and vs.t[k] == env._t and vs.position[k] == env._w
    assert n_done >= 2 * n, "the test must cross autoresets"


def _trajectory(n, k, seed, n_steps, cfg):
    "Rewards and observations of env k in a batch of n (env k seeded seed + k), actions a function of (step, k)."
    venv = CreditSpreadVectorEnv(n, cfg)
    venv.reset(seed=[seed + j for j in range(n)])
    rewards, observations = [], []
    for t in range(n_steps):
        a = (np.arange(n) * 7 + t * 3) % len(cfg.positions)
        obs, rew, term, trunc, _ = venv.step(a)
        rewards.append(rew[k]); observations.append(obs[k])
    return np.array(rewards), np.array(observations), venv.state.market_seed[k]


@pytest.mark.parametrize("k", [0, 17, 63])
def test_env_k_is_identical_in_batches_of_1_and_64(k):
    """Env k's path does not depend on the envs beside it: batch of 64 vs a batch of 1 with env k's seed."""
    cfg = CreditSpreadConfig(episode_days=100)                              # 300 steps cross two autoresets
    r64, o64, s64 = _trajectory(64, k, 5000, 300, cfg)
    venv = CreditSpreadVectorEnv(1, cfg)
    venv.reset(seed=[5000 + k])
    r1, o1 = [], []
    for t in range(300):
        obs, rew, *_ = venv.step([(k * 7 + t * 3) % 3])
        r1.append(rew[0]); o1.append(obs[0])
    assert_bitwise(r64, np.array(r1), "rewards")
    assert_bitwise(o64, np.array(o1), "observations")
    assert s64 == venv.state.market_seed[0]


def test_reset_with_seed_is_deterministic_and_unseeded_resets_continue_the_streams():
    venv = CreditSpreadVectorEnv(8)
    a = venv.reset(seed=3)[0]
    steps_a = [venv.step(np.full(8, 2))[1] for _ in range(5)]
    b = venv.reset(seed=3)[0]
    steps_b = [venv.step(np.full(8, 2))[1] for _ in range(5)]
    assert_bitwise(a, b, "reset obs")
    assert_bitwise(np.array(steps_a), np.array(steps_b), "rewards")
    seeds_1 = venv.reset()[1]["market_seed"]
    seeds_2 = venv.reset()[1]["market_seed"]
    assert len(set(seeds_1) | set(seeds_2)) == 16                          # fresh market paths each reset
    single = CreditSpreadEnv()
    single.reset(seed=3 + 5)
    assert [single.reset()[1]["market_seed"], single.reset()[1]["market_seed"]] == [seeds_1[5], seeds_2[5]]


def _assert_same_infos(a, b, path="infos"):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), (path, sorted(a), sorted(b))
        for key in a: _assert_same_infos(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        for x, y in zip(a, b): assert (x is None and y is None) or np.array_equal(bits(x), bits(y)), path
    else:
        assert np.asarray(a).dtype == np.asarray(b).dtype and np.array_equal(a, b), (path, a, b)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_gymnasium_vector_env_equals_sync_vector_env(name):
    cfg, n = CONFIGS[name], 6
    ours = CreditSpreadVectorEnv(n, cfg)
    ref = gym.vector.SyncVectorEnv([lambda: CreditSpreadEnv(cfg)] * n, autoreset_mode=AutoresetMode.SAME_STEP)
    assert ours.metadata["autoreset_mode"] == ref.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    for x, y in zip(ours.reset(seed=77), ref.reset(seed=77)): _assert_same_infos(x, y)
    for a in np.random.default_rng(2).integers(0, len(cfg.positions), (45, n)):
        for x, y in zip(ours.step(a), ref.step(a)): _assert_same_infos(x, y)


@pytest.mark.parametrize("step_infos", [True, False])
def test_sb3_adapter_equals_dummy_vec_env(step_infos):
    from stable_baselines3.common.vec_env import DummyVecEnv
    cfg, n = CreditSpreadConfig(episode_days=9), 5
    ours, ref = CreditSpreadSB3VecEnv(n, cfg, step_infos=step_infos), DummyVecEnv([lambda: CreditSpreadEnv(cfg)] * n)
    ours.seed(31); ref.seed(31)
    assert_bitwise(ours.reset(), ref.reset(), "reset obs")
    assert ours.reset_infos == ref.reset_infos
    n_done = 0
    for a in np.random.default_rng(4).integers(0, 3, (40, n)):
        (o1, r1, d1, i1), (o2, r2, d2, i2) = ours.step(a), ref.step(a)
        assert_bitwise(o1, o2, "obs"); assert_bitwise(r1, r2, "float32 rewards")
        assert np.array_equal(d1, d2) and d1.dtype == d2.dtype
        for x, y in zip(i1, i2):
            end_keys = {"terminal_observation", "TimeLimit.truncated"} if "terminal_observation" in y else set()
            keys = set(y) if step_infos else end_keys                       # step_infos=False: end-of-episode keys only
            assert set(x) == keys
            for key in keys: assert np.array_equal(x[key], y[key]), key
        assert ours.reset_infos == ref.reset_infos
        n_done += int(d1.sum())
    assert n_done >= n * 3


def test_sb3_ppo_learns_on_the_adapter_without_nan():
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecCheckNan, VecMonitor
    venv = VecCheckNan(VecMonitor(CreditSpreadSB3VecEnv(16, CreditSpreadConfig(episode_days=50), step_infos=False)),
                       raise_exception=True, check_inf=True)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=128, n_epochs=2, seed=0, device="cpu")
    model.learn(total_timesteps=1024)
    assert model.num_timesteps >= 1024
    assert len(model.ep_info_buffer) >= 16                                  # VecMonitor saw finished episodes
    assert all(np.isfinite(e["r"]) for e in model.ep_info_buffer)


def test_adapter_attributes_and_unsupported_methods():
    venv = CreditSpreadSB3VecEnv(3)
    venv.seed(10); venv.reset()
    assert venv.get_attr("market_seed") == [10, 11, 12]
    assert venv.get_attr("config", indices=[1])[0] == CreditSpreadConfig()
    assert venv.env_is_wrapped(gym.Wrapper) == [False, False, False]
    with pytest.raises(NotImplementedError, match="share one config"):
        venv.set_attr("config", None)
    with pytest.raises(NotImplementedError, match="no per-env objects"):
        venv.env_method("reset")


def test_step_before_reset_and_bad_seeds_raise():
    venv = CreditSpreadVectorEnv(2)
    with pytest.raises(RuntimeError, match="reset"):
        venv.step([0, 0])
    for bad in (-1, 2**63, 1.5, [1], [1, -2], "7"):
        with pytest.raises(ValueError, match="seed must be"):
            venv.reset(seed=bad)
    with pytest.raises(ValueError, match="options"):
        venv.reset(options={"reset_mask": [True, False]})


def test_make_vec_builds_the_batched_twin():
    import credit_rl.envs  # noqa: F401  (registers the ids and their vector entry points)
    venv = gym.make_vec("credit_rl/CreditSpread-v0", num_envs=16, vectorization_mode="vector_entry_point",
                        config={"positions": [0.0, 1.0]})
    assert isinstance(venv, CreditSpreadVectorEnv) and venv.num_envs == 16
    assert venv.single_action_space.n == 2
    obs, _ = venv.reset(seed=0)
    assert_bitwise(obs[3], CreditSpreadEnv({"positions": [0.0, 1.0]}).reset(seed=3)[0], "obs of env 3")


def test_sb3_adapter_rejects_reset_options():
    venv = CreditSpreadSB3VecEnv(2)
    venv.set_options({"reset_mask": [True, False]})
    with pytest.raises(ValueError, match="options"):
        venv.reset()


# --- the calibrated market (market_model='synthetic') and continuous actions --------------------------------------

TWIN_CONFIGS = {
    "synthetic, discrete": CreditSpreadConfig(market_model="synthetic", episode_days=7),
    "synthetic, continuous": CreditSpreadConfig(market_model="synthetic", action_type="continuous", episode_days=6,
                                                max_abs_weight=2.0, initial_position=0.5),
    "synthetic HY, no regime features, short maturity": CreditSpreadConfig(
        market_model="synthetic", bond_rating="BB", bond_sector="utilities", regime_features=False, episode_days=9,
        maturity_years=5 / 252, positions=(-1.0, 0.0, 0.5, 1.0)),
    "single_bond, continuous": CreditSpreadConfig(action_type="continuous", episode_days=8),
}


def _actions(cfg, n_steps, n, seed):
    "Random actions of the config's space: indices, or float32 target weights of shape (n, 1)."
    rng = np.random.default_rng(seed)
    if cfg.action_type == "discrete": return rng.integers(0, len(cfg.positions), (n_steps, n))
    return rng.uniform(-cfg.max_abs_weight, cfg.max_abs_weight, (n_steps, n, 1)).astype(np.float32)


@pytest.mark.parametrize("name", list(TWIN_CONFIGS))
def test_twin_equals_single_envs_bitwise_on_the_calibrated_market_and_continuous_actions(name):
    """CreditSpreadVectorEnv vs N plain envs, same seeds and actions, across autoresets: obs, rewards, flags, P&L parts,
    path infos (VIX, liquidity stress, regime) and market seeds identical."""
    cfg, n, n_steps = TWIN_CONFIGS[name], 4, 22
    venv, envs = CreditSpreadVectorEnv(n, cfg), [CreditSpreadEnv(cfg) for _ in range(n)]
    obs, infos = venv.reset(seed=300)
    assert obs.shape == (n, len(envs[0].obs_names)) and venv.single_observation_space == envs[0].observation_space
    assert venv.single_action_space == envs[0].action_space
    for k, env in enumerate(envs):
        o, i = env.reset(seed=300 + k)
        assert_bitwise(obs[k], o, f"reset obs env {k}")
        assert infos["spread_bp"][k] == i["spread_bp"] and infos["market_seed"][k] == i["market_seed"]
    n_done = 0
    for t, a in enumerate(_actions(cfg, n_steps, n, 9)):
        obs, rew, term, trunc, infos = venv.step(a)
        for k, env in enumerate(envs):
            o, r, te, tr, info = env.step(a[k])
            assert_bitwise(rew[k], np.float64(r), f"reward env {k} step {t}")
            assert_bitwise(venv.out.info[:, k], np.array([info[x] for x in INFO_NAMES]), f"info env {k} step {t}")
            assert (term[k], trunc[k]) == (te, tr)
            info_src = infos["final_info"] if te or tr else infos
            for key in ("vix", "liquidity_stress", "regime"):
                if key in info: assert info_src[key][k] == info[key], (key, k, t)
            if te or tr:
                n_done += 1
                assert_bitwise(infos["final_obs"][k], o, f"final obs env {k} step {t}")
                o, i = env.reset()
                assert infos["market_seed"][k] == i["market_seed"] and infos["spread_bp"][k] == i["spread_bp"]
            assert_bitwise(obs[k], o, f"obs env {k} step {t}")
    assert n_done >= 2 * n, "the test must cross autoresets"


def test_synthetic_twin_equals_sync_vector_env_and_dummy_vec_env():
    """gymnasium layout of the infos (path keys included) and SB3 adapter equal SyncVectorEnv / DummyVecEnv."""
    from stable_baselines3.common.vec_env import DummyVecEnv
    cfg, n = TWIN_CONFIGS["synthetic, continuous"], 3
    ours = CreditSpreadVectorEnv(n, cfg)
    ref = gym.vector.SyncVectorEnv([lambda: CreditSpreadEnv(cfg)] * n, autoreset_mode=AutoresetMode.SAME_STEP)
    for x, y in zip(ours.reset(seed=11), ref.reset(seed=11)): _assert_same_infos(x, y)
    acts = _actions(cfg, 16, n, 5)
    for a in acts:
        for x, y in zip(ours.step(a), ref.step(a)): _assert_same_infos(x, y)
    sb3, dummy = CreditSpreadSB3VecEnv(n, cfg), DummyVecEnv([lambda: CreditSpreadEnv(cfg)] * n)
    sb3.seed(4); dummy.seed(4)
    assert_bitwise(sb3.reset(), dummy.reset(), "reset obs")
    assert sb3.reset_infos == dummy.reset_infos
    for a in acts:
        (o1, r1, d1, i1), (o2, r2, d2, i2) = sb3.step(a), dummy.step(a)
        assert_bitwise(o1, o2, "obs"); assert_bitwise(r1, r2, "rewards"); assert np.array_equal(d1, d2)
        for x, y in zip(i1, i2):
            assert set(x) == set(y)
            for key in y: assert np.array_equal(x[key], y[key]), key
        assert sb3.reset_infos == dummy.reset_infos


def test_twin_rejects_real_data_and_bad_continuous_actions():
    with pytest.raises(ValueError, match="market_model='real'"):
        CreditSpreadVectorEnv(2, {"market_model": "real"})
    for mm in ("single_bond", "synthetic"):   # the kernels compute the base feature set only (for now)
        with pytest.raises(ValueError, match="features: CreditSpreadVectorEnv computes only the 'base'"):
            CreditSpreadVectorEnv(2, market_model=mm, features="seed")
    venv = CreditSpreadVectorEnv(2, {"action_type": "continuous", "max_abs_weight": 1.5})
    venv.reset(seed=0)
    for bad, msg in (([0.1, np.inf], "env 1 got inf"), ([[0.1], [1.6]], "env 1 got 1.6"), ([0.1], r"shape \(1,\)"),
                     (["a", "b"], "finite target weights"), (["0", "1"], "dtype <U1"), ([True, False], "dtype bool")):
        with pytest.raises(ValueError, match=msg):
            venv.step(bad)
