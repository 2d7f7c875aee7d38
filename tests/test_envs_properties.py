"""Property tests (hypothesis) of CreditSpreadEnv and its batched twin CreditSpreadVectorEnv.

The calibrated-market modes (market_model 'synthetic', continuous sizing) get the same properties below
`synthetic_configs`: random bonds, books and action sequences stay finite; bad Box actions raise.

* Random valid configs and action sequences never produce NaN/inf in observations, rewards or P&L parts.
  "Valid" = the declared bounds of `CreditSpreadConfig` and `SpreadProcessParams`; fields bounded only below get a
  generous finite top (theta up to 1e5 bp, relative level vol up to 100x theta, volume from $1k, capital to $1e13).
  (Before the market's numerical guards, commit 6e088b0, a CEV spread with low vol_elasticity could reach 0 and
  return NaN; `test_extreme_market_that_used_to_return_nan_stays_finite` keeps the example hypothesis found.)
* NaN/inf, non-integer or out-of-space actions raise a ValueError saying what is allowed.
* Invalid configs (out of bounds, NaN, unknown keys) raise errors naming the field.
Each property runs a bounded number of examples (about 10 s each); the `slow` variants run many more.
"""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credit_rl.config import ParamsError, from_dict
from credit_rl.envs.spread import INFO_NAMES, OBS_CLIP, CreditSpreadConfig, CreditSpreadEnv
from credit_rl.envs.spread_vec import CreditSpreadSB3VecEnv, CreditSpreadVectorEnv
from credit_rl.market.bond import SpreadProcessParams

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def market_params(draw):
    theta = draw(st.floats(0.01, 1e5))
    return SpreadProcessParams(
        theta_bp=theta, kappa_per_yr=draw(st.floats(1e-3, 1e3)),
        sigma_level_bp_per_sqrt_yr=theta * draw(st.floats(1e-3, 100.0)),
        vol_elasticity=draw(st.floats(0.0, 1.0)), logvol_half_life_days=draw(st.floats(0.1, 1e4)),
        logvol_std=draw(st.floats(0.0, 2.0)), vol_spread_corr=draw(st.floats(-1.0, 1.0)),
        shock_rate_per_yr=draw(st.floats(0.0, 252.0)), shock_half_life_days=draw(st.floats(0.1, 1e4)),
        shock_spread_jump_log=draw(st.floats(0.0, 0.999)), half_spread_bp=draw(st.floats(0.0, 1e4)),
        half_spread_vol_elasticity=draw(st.floats(0.0, 10.0)), half_spread_shock_mult=draw(st.floats(0.0, 100.0)),
        volume_usd=draw(st.floats(1e3, 1e12)), volume_log_sd=draw(st.floats(0.0, 3.0)),
        volume_shock_drop=draw(st.floats(0.0, 100.0)), init=draw(st.sampled_from(["stationary", "theta"])))


@st.composite
def configs(draw):
    positions = draw(st.lists(st.floats(-5.0, 5.0), min_size=2, max_size=6))
    return CreditSpreadConfig(
        market=draw(market_params()), spread_duration_years=draw(st.floats(0.01, 30.0)),
        maturity_years=draw(st.floats(1 / 252, 50.0)), financing_spread_bp_per_yr=draw(st.floats(-500.0, 1000.0)),
        positions=tuple(positions), initial_position=draw(st.floats(-5.0, 5.0)),
        capital_usd=draw(st.floats(1.0, 1e13)), episode_days=draw(st.integers(1, 300)),
        impact_coef=draw(st.floats(0.0, 100.0)), include_costs=draw(st.booleans()))


def _assert_finite_step(obs, reward, info, space, where):
    assert np.isfinite(obs).all() and space.contains(obs), f"{where}: obs {obs}"
    assert np.all(np.isfinite(reward)), f"{where}: reward {reward}"
    assert all(math.isfinite(v) for v in info.values()), f"{where}: info {info}"


def _single_env_is_finite(cfg, seed, action_seed):
    env = CreditSpreadEnv(cfg)
    obs, info = env.reset(seed=seed)
    _assert_finite_step(obs, 0.0, {k: v for k, v in info.items() if k != "market_seed"}, env.observation_space, "reset")
    actions = np.random.default_rng(action_seed).integers(0, len(cfg.positions), 300)
    for t, a in enumerate(actions):
        obs, reward, term, trunc, info = env.step(int(a))
        _assert_finite_step(obs, reward, info, env.observation_space, f"step {t} of {cfg}")
        if term or trunc: break


@FAST
@given(cfg=configs(), seed=st.integers(0, 2**40), action_seed=st.integers(0, 2**32))
def test_single_env_random_configs_and_actions_stay_finite(cfg, seed, action_seed):
    _single_env_is_finite(cfg, seed, action_seed)


@pytest.mark.slow
@SLOW
@given(cfg=configs(), seed=st.integers(0, 2**40), action_seed=st.integers(0, 2**32))
def test_single_env_random_configs_and_actions_stay_finite_many(cfg, seed, action_seed):
    _single_env_is_finite(cfg, seed, action_seed)


@FAST
@given(cfg=configs(), seed=st.integers(0, 2**40), action_seed=st.integers(0, 2**32))
def test_vector_env_random_configs_and_actions_stay_finite_across_autoresets(cfg, seed, action_seed):
    venv = CreditSpreadVectorEnv(4, dataclasses.replace(cfg, episode_days=min(cfg.episode_days, 40)))
    obs, _ = venv.reset(seed=seed)
    assert np.isfinite(obs).all() and venv.observation_space.contains(obs)
    for t, a in enumerate(np.random.default_rng(action_seed).integers(0, len(cfg.positions), (100, 4))):
        obs, reward, term, trunc, infos = venv.step(a)
        assert np.isfinite(obs).all() and venv.observation_space.contains(obs), f"step {t}: {obs}"
        assert np.isfinite(reward).all() and np.isfinite(venv.out.info).all(), f"step {t}: {reward}"
        done = term | trunc
        if done.any(): assert all(np.isfinite(o).all() for o in infos["final_obs"][done])


BAD_SINGLE_ACTIONS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),                       # 1.0 too: a weight index is an integer
    st.sampled_from([np.nan, np.inf, -np.inf, np.float32(np.nan), np.float64(1.0)]),
    st.integers(max_value=-1), st.integers(min_value=3),
    st.integers(-(2**62), -1).map(np.int64), st.integers(3, 2**62).map(np.int64),
    st.text(max_size=3), st.none(), st.just([0]), st.just(np.array([1, 2])))


@FAST
@given(action=BAD_SINGLE_ACTIONS)
def test_single_env_rejects_nan_inf_and_out_of_space_actions(action):
    env = CreditSpreadEnv()                                              # 3 positions: valid actions are 0, 1, 2
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be an integer in \[0, 3\)"):
        env.step(action)
    env.step(1)                                                          # the env is still usable after the error


BAD_ELEMENTS = st.one_of(st.sampled_from([np.nan, np.inf, -np.inf, 0.5, 1.0]),
                         st.integers(max_value=-1), st.integers(3, 2**62))


@FAST
@given(n=st.integers(1, 8), data=st.data())
def test_vector_env_and_sb3_adapter_reject_bad_actions(n, data):
    venv, sb3 = CreditSpreadVectorEnv(n), CreditSpreadSB3VecEnv(n)
    venv.reset(seed=0); sb3.reset()
    actions = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), dtype=object)
    actions[data.draw(st.integers(0, n - 1))] = data.draw(BAD_ELEMENTS)
    actions = np.array(actions.tolist())                                  # numpy picks int64 or float64
    for step in (venv.step, sb3.step):
        with pytest.raises(ValueError, match=rf"actions must be {n} integers in \[0, 3\)"):
            step(actions)
    with pytest.raises(ValueError, match="actions must be"):
        venv.step(np.zeros(n + 1, dtype=np.int64))                          # wrong shape


def _bounded_fields(cls):
    "(name, metadata) of the numeric fields of dataclass `cls` that declare bounds."
    return [(f.name, f.metadata) for f in dataclasses.fields(cls)
            if any(f.metadata.get(k) is not None for k in ("ge", "gt", "le", "lt"))
            and f.type in ("float", "int", float, int)]


@st.composite
def out_of_bounds(draw, cls):
    "A (field name, value) breaking the field's declared bound, or NaN."
    name, m = draw(st.sampled_from(_bounded_fields(cls)))
    options = [st.just(math.nan)]
    if m.get("ge") is not None: options.append(st.floats(m["ge"] - 1e6, m["ge"], exclude_max=True))
    if m.get("gt") is not None: options.append(st.floats(m["gt"] - 1e6, m["gt"]))
    if m.get("le") is not None: options.append(st.floats(m["le"], m["le"] + 1e6, exclude_min=True))
    if m.get("lt") is not None: options.append(st.floats(m["lt"], m["lt"] + 1e6))
    return name, draw(st.one_of(options))                                 # int fields get floats: also an error


@FAST
@given(bad=out_of_bounds(CreditSpreadConfig))
def test_invalid_env_config_raises_naming_the_field(bad):
    name, value = bad
    with pytest.raises(ParamsError, match=name):
        CreditSpreadConfig(**{name: value})
    with pytest.raises(ParamsError, match=name):
        from_dict(CreditSpreadConfig, {name: value})
    with pytest.raises(ParamsError, match=name):
        CreditSpreadVectorEnv(2, {name: value})


@FAST
@given(bad=out_of_bounds(SpreadProcessParams))
def test_invalid_market_config_raises_naming_the_field(bad):
    name, value = bad
    with pytest.raises(ParamsError, match=name):
        SpreadProcessParams(**{name: value})
    with pytest.raises(ParamsError, match=f"market.{name}"):
        from_dict(CreditSpreadConfig, {"market": {name: value}})


@pytest.mark.parametrize("config, field", [
    ({"market": {"volume_usd": -1e6}}, "market.volume_usd"),
    ({"market": {"volume_usd": 0.0}}, "market.volume_usd"),
    ({"episode_days": 0}, "episode_days"),
    ({"maturity_years": 0.0}, "maturity_years"),
    ({"capital_usd": -5e6}, "capital_usd"),
    ({"positions": [0.0, 7.0]}, "positions[1]"),
    ({"positions": [0.0, float("nan")]}, "positions[1]"),
    ({"rating": "AAA"}, "rating"),                                       # unknown key: the env has no rating yet
    ({"market": {"liquidity": 1.0}}, "market.liquidity"),
])
def test_invalid_config_examples_name_the_field(config, field):
    for make in (lambda: from_dict(CreditSpreadConfig, config), lambda: CreditSpreadEnv(config),
                 lambda: CreditSpreadVectorEnv(3, config), lambda: CreditSpreadSB3VecEnv(3, config)):
        with pytest.raises(ParamsError) as err:
            make()
        assert field in str(err.value), str(err.value)


def test_constructor_checks_positions_and_num_envs():
    with pytest.raises(ParamsError, match=r"positions\[0\]"):
        CreditSpreadConfig(positions=(float("inf"), 0.0))
    for bad in (0, -3, 2.0, True, "8"):
        with pytest.raises(ValueError, match="num_envs"):
            CreditSpreadVectorEnv(bad)


@pytest.mark.parametrize("market, positions", [
    (dict(theta_bp=20.0, sigma_level_bp_per_sqrt_yr=18.0, vol_elasticity=0.0, logvol_std=0.0), (-1.0, 0.0, 1.0)),
    (dict(theta_bp=20.0, kappa_per_yr=1.0, sigma_level_bp_per_sqrt_yr=11.25, vol_elasticity=0.5, logvol_half_life_days=19.0,
          logvol_std=1.5, vol_spread_corr=1.0, shock_rate_per_yr=134.0, shock_half_life_days=1.0,
          shock_spread_jump_log=0.5, half_spread_bp=0.0, volume_usd=1e4), (0.0, 0.0)),
])
def test_extreme_market_that_used_to_return_nan_stays_finite(market, positions):
    """Examples hypothesis found before the market's guards (the spread reached 0, then NaN); they must stay finite."""
    env = CreditSpreadEnv(CreditSpreadConfig(market=SpreadProcessParams(**market), positions=positions))
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        assert np.isfinite(obs).all(), f"seed {seed}: reset obs {obs}"
        done = False
        while not done:
            obs, r, term, trunc, info = env.step(1)
            assert np.isfinite(obs).all() and math.isfinite(r), f"seed {seed}: obs {obs}, reward {r}, info {info}"
            done = term or trunc


# --- the calibrated market: market_model='synthetic', discrete or continuous sizing ---
from credit_rl.costs import CLIENTS  # noqa: E402
from credit_rl.market.synthetic import RATINGS, SECTORS  # noqa: E402


@st.composite
def synthetic_configs(draw):
    continuous = draw(st.booleans())
    max_w = draw(st.floats(0.01, 5.0))
    return CreditSpreadConfig(
        market_model="synthetic", bond_rating=draw(st.sampled_from(RATINGS)), bond_sector=draw(st.sampled_from(SECTORS)),
        bond_volume_usd=draw(st.floats(1e3, 1e12)), client=draw(st.sampled_from(CLIENTS)),
        venue=draw(st.sampled_from(["otc_voice", "otc_electronic"])), regime_features=draw(st.sampled_from([None, True, False])),
        action_type="continuous" if continuous else "discrete", max_abs_weight=max_w,
        spread_duration_years=draw(st.floats(0.01, 30.0)), maturity_years=draw(st.floats(1 / 252, 50.0)),
        financing_spread_bp_per_yr=draw(st.floats(-500.0, 1000.0)),
        positions=tuple(draw(st.lists(st.floats(-5.0, 5.0), min_size=2, max_size=6))),
        initial_position=draw(st.floats(-max_w, max_w)) if continuous else draw(st.floats(-5.0, 5.0)),
        capital_usd=draw(st.floats(1.0, 1e13)), episode_days=draw(st.integers(1, 300)),
        impact_coef=draw(st.floats(0.0, 100.0)), include_costs=draw(st.booleans()))


@FAST
@given(cfg=synthetic_configs(), seed=st.integers(0, 2**40), action_seed=st.integers(0, 2**32))
def test_synthetic_env_random_configs_and_actions_stay_finite(cfg, seed, action_seed):
    env = CreditSpreadEnv(cfg)
    obs, info = env.reset(seed=seed)
    _assert_finite_step(obs, 0.0, {k: v for k, v in info.items() if k != "market_seed"}, env.observation_space, "reset")
    g = np.random.default_rng(action_seed)
    for t in range(300):
        a = (g.uniform(-cfg.max_abs_weight, cfg.max_abs_weight, 1).astype(np.float32) if cfg.action_type == "continuous"
             else int(g.integers(len(cfg.positions))))
        obs, reward, term, trunc, info = env.step(a)
        _assert_finite_step(obs, reward, info, env.observation_space, f"step {t} of {cfg}")
        if term or trunc: break


@FAST
@given(action=st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not abs(x) <= 0.5),
                        st.just(np.array([np.nan], np.float32)), st.just(np.array([0.1, 0.2])), st.text(max_size=3), st.none()))
def test_continuous_env_rejects_nan_inf_and_out_of_limit_weights(action):
    env = CreditSpreadEnv(CreditSpreadConfig(market_model="synthetic", action_type="continuous", max_abs_weight=0.5))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be one finite target weight in \[-0.5, 0.5\]"):
        env.step(action)
    env.step(np.array([0.5], np.float32))                                 # the limit itself is allowed; the env is still usable


@pytest.mark.parametrize("config, field", [
    ({"market_model": "garch"}, "market_model"), ({"bond_rating": "AAB"}, "bond_rating"),
    ({"bond_sector": "crypto"}, "bond_sector"), ({"client": "hedge_fund"}, "client"), ({"venue": "etf"}, "venue"),
    ({"action_type": "box"}, "action_type"), ({"max_abs_weight": 0.0}, "max_abs_weight"),
    ({"bond_volume_usd": -1.0}, "bond_volume_usd"), ({"regime_features": True}, "regime_features"),
    ({"market_model": "synthetic", "synthetic": {"vix_ref": -1.0}}, "synthetic.vix_ref"),
    ({"market_model": "synthetic", "universe": {"term_slope": 3.0}}, "universe.term_slope"),
])
def test_invalid_calibrated_market_configs_name_the_field(config, field):
    for make in (lambda: from_dict(CreditSpreadConfig, config), lambda: CreditSpreadEnv(config)):
        with pytest.raises(ParamsError) as err:
            make()
        assert field in str(err.value), str(err.value)
