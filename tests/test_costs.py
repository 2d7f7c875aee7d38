"""Property tests of the transaction-cost model (credit_rl.costs): monotonicity in size within a bucket,
stress >= calm, retail >= institutional, zero trade -> 0, Q^1.5 impact, clear errors on bad input,
the numba twin equal to the Python model, and latency moments against Monte Carlo."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credit_rl.costs import (CLIENTS, COST_MODEL, MATURITY_EDGES_YEARS, RATINGS, SIZE_EDGES_USD, VENUES, CostModel,
                             client_half_spread_bp, cost_breakdown, cost_breakdown_nb, cost_kernel_params,
                             delay_cost_moments, delay_cost_sample, flat_fee_cost, maturity_bucket_nb, size_bucket,
                             sqrt_impact_cost, trade_cost, trade_cost_nb)

PARTS = ("spread", "impact_temporary", "impact_permanent", "delay", "total")
SIZE_BOUNDS = (0.0,) + SIZE_EDGES_USD + (1e9,)  # bucket b holds [SIZE_BOUNDS[b], SIZE_BOUNDS[b+1])

ratings, clients, venues = st.sampled_from(RATINGS), st.sampled_from(CLIENTS), st.sampled_from(VENUES)
maturities = st.floats(0.05, 40.0)
sigmas = st.floats(0.0, 0.03)
volumes = st.floats(1e5, 1e10)
stresses = st.floats(0.0, 3.0)
shares = st.floats(0.0, 1.0)
delays = st.floats(0.0, 60.0)


def _trade(q, rating, maturity, client, venue, sigma, volume, stress, share, delay, model=COST_MODEL):
    return cost_breakdown(q, rating=rating, maturity_years=maturity, client=client, venue=venue, sigma_daily=sigma,
                          daily_volume=volume, stress=stress, informed_share=share, delay_minutes=delay, model=model)


@settings(max_examples=300, deadline=None)
@given(bucket=st.integers(0, 3), u=st.floats(0.0, 1.0), v=st.floats(0.0, 1.0), rating=ratings, maturity=maturities,
       client=clients, venue=venues, sigma=sigmas, volume=volumes, stress=stresses, share=shares, delay=delays,
       sign=st.sampled_from([1.0, -1.0]))
def test_cost_monotone_in_size_within_a_bucket(bucket, u, v, rating, maturity, client, venue, sigma, volume, stress,
                                               share, delay, sign):
    lo, hi = SIZE_BOUNDS[bucket], SIZE_BOUNDS[bucket + 1]
    q1, q2 = sorted((lo + u * (hi - lo) * 0.999, lo + v * (hi - lo) * 0.999))
    assert size_bucket(q1) == size_bucket(q2) == bucket
    a = _trade(sign * q1, rating, maturity, client, venue, sigma, volume, stress, share, delay)
    b = _trade(sign * q2, rating, maturity, client, venue, sigma, volume, stress, share, delay)
    for k in PARTS: assert b[k] >= a[k] * (1 - 1e-12), k
    assert b["half_spread_bp"] == pytest.approx(a["half_spread_bp"], rel=1e-12)   # one bucket, one quote
    if q1 >= 1.0: assert b["total_bp"] >= a["total_bp"] * (1 - 1e-12)   # per-dollar impact rises too (not for sub-dollar notionals: per-bp rounding)


@settings(max_examples=300, deadline=None)
@given(q=st.floats(-5e7, 5e7), rating=ratings, maturity=maturities, client=clients, venue=venues, sigma=sigmas,
       volume=volumes, s1=stresses, s2=stresses, share=shares, delay=delays)
def test_stress_never_cheaper_than_calm(q, rating, maturity, client, venue, sigma, volume, s1, s2, share, delay):
    lo, hi = sorted((s1, s2))
    a = _trade(q, rating, maturity, client, venue, sigma, volume, lo, share, delay)
    b = _trade(q, rating, maturity, client, venue, sigma, volume, hi, share, delay)
    assert b["half_spread_bp"] >= a["half_spread_bp"] and b["total"] >= a["total"] * (1 - 1e-12)
    calm = _trade(q, rating, maturity, client, venue, sigma, volume, 0.0, share, delay)
    assert a["total"] >= calm["total"] * (1 - 1e-12)


@settings(max_examples=300, deadline=None)
@given(q=st.floats(-5e7, 5e7), rating=ratings, maturity=maturities, venue=venues, sigma=sigmas, volume=volumes,
       stress=stresses, share=shares, delay=delays)
def test_retail_pays_at_least_institutional(q, rating, maturity, venue, sigma, volume, stress, share, delay):
    inst = _trade(q, rating, maturity, "institutional", venue, sigma, volume, stress, share, delay)
    ret = _trade(q, rating, maturity, "retail", venue, sigma, volume, stress, share, delay)
    assert ret["half_spread_bp"] >= inst["half_spread_bp"] and ret["total"] >= inst["total"]
    if venue in ("otc_voice", "otc_electronic"): assert ret["half_spread_bp"] > inst["half_spread_bp"]
    else: assert ret["total"] == inst["total"]        # exchange-like venues: the same price for every client


@settings(max_examples=200, deadline=None)
@given(rating=ratings, maturity=maturities, client=clients, venue=venues, sigma=sigmas, volume=volumes,
       stress=stresses, share=shares, delay=delays)
def test_zero_trade_costs_nothing(rating, maturity, client, venue, sigma, volume, stress, share, delay):
    b = _trade(0.0, rating, maturity, client, venue, sigma, volume, stress, share, delay)
    for k in PARTS + ("delay_sd", "mid_move_frac", "total_bp"): assert b[k] == 0.0, k
    kp = cost_kernel_params()
    assert cost_breakdown_nb(0.0, RATINGS.index(rating), maturity_bucket_nb(maturity, kp), CLIENTS.index(client),
                             VENUES.index(venue), sigma, volume, stress, delay, share, kp) == (0.0, 0.0, 0.0, 0.0)


@settings(max_examples=200, deadline=None)
@given(q=st.floats(1e3, 1e8), k=st.floats(1.01, 100.0), sigma=st.floats(1e-4, 0.03), volume=volumes,
       y=st.floats(0.1, 2.0), phi=st.floats(0.0, 1.0))
def test_impact_scales_as_q_to_the_1_5(q, k, sigma, volume, y, phi):
    assert sqrt_impact_cost(k * q, sigma, volume, y) / sqrt_impact_cost(q, sigma, volume, y) == pytest.approx(k ** 1.5, rel=1e-9)
    m = CostModel(impact_coef=y, permanent_fraction=phi)
    a = _trade(q, "BBB", 5.0, "institutional", "otc_voice", sigma, volume, 0.0, 0.0, 0.0, model=m)
    b = _trade(k * q, "BBB", 5.0, "institutional", "otc_voice", sigma, volume, 0.0, 0.0, 0.0, model=m)
    imp = lambda d: d["impact_temporary"] + d["impact_permanent"]
    assert imp(b) / imp(a) == pytest.approx(k ** 1.5, rel=1e-9)
    assert a["impact_permanent"] == pytest.approx(phi * imp(a), rel=1e-12, abs=1e-12)


def test_size_discount_inverts_in_stress():
    "Calm: per-dollar half-spread falls with size (EHP 2007); stress 1: rises (O'Hara & Zhou 2021); round lot x5."
    reps = [5e4, 5e5, 2e6, 1e7]   # one trade per size bucket
    for r in RATINGS:
        calm = [client_half_spread_bp(q, rating=r, maturity_years=5) for q in reps]
        hot = [client_half_spread_bp(q, rating=r, maturity_years=5, stress=1.0) for q in reps]
        assert all(np.diff(calm) < 0) and all(np.diff(hot) > 0), (r, calm, hot)
        assert hot[2] / calm[2] == pytest.approx(5.0, rel=1e-12)
        retail_extra_round_trip = 2 * (client_half_spread_bp(2e6, rating=r, maturity_years=5, client="retail") - calm[2])
        assert retail_extra_round_trip == pytest.approx(65.0, rel=1e-12)
    assert all(20 <= 2 * client_half_spread_bp(2e6, rating=r, maturity_years=5) <= 50 for r in ("BBB", "BB", "B"))


def test_maturity_and_size_bucket_edges_are_lower_inclusive():
    kp = cost_kernel_params()
    for b, edge in enumerate(MATURITY_EDGES_YEARS, start=1):
        assert maturity_bucket_nb(edge, kp) == b and maturity_bucket_nb(np.nextafter(edge, 0), kp) == b - 1
    for b, edge in enumerate(SIZE_EDGES_USD, start=1):
        assert size_bucket(edge) == b and size_bucket(np.nextafter(edge, 0)) == b - 1


@pytest.mark.parametrize("field,kwargs,message", [
    ("notional", dict(notional=float("nan")), "notional must be finite"),
    ("notional", dict(notional=float("inf")), "notional must be finite"),
    ("sigma_daily", dict(sigma_daily=-0.001), "sigma_daily must be >= 0"),
    ("sigma_daily", dict(sigma_daily=float("nan")), "sigma_daily must be finite"),
    ("daily_volume", dict(daily_volume=-1e6), "daily_volume must be > 0"),
    ("daily_volume", dict(daily_volume=0.0), "daily_volume must be > 0"),
    ("stress", dict(stress=-0.5), "stress must be >= 0"),
    ("stress", dict(stress=float("nan")), "stress must be finite"),
    ("maturity_years", dict(maturity_years=-2.0), "maturity_years must be > 0"),
    ("maturity_years", dict(maturity_years=None), "maturity_years is required"),
    ("delay_minutes", dict(delay_minutes=-1.0), "delay_minutes must be >= 0"),
    ("informed_share", dict(informed_share=-0.1), "informed_share must be >= 0"),
    ("informed_share", dict(informed_share=1.2), "informed_share must be <= 1"),
    ("rating", dict(rating="BBB-"), "rating must be one of ('AAA', 'AA', 'A', 'BBB', 'BB', 'B', 'CCC')"),
    ("client", dict(client="hedge fund"), "client must be one of ('institutional', 'retail')"),
    ("venue", dict(venue="dark"), "venue must be one of ('otc_voice', 'otc_electronic', 'etf', 'cds_index')"),
])
def test_bad_inputs_raise_naming_the_field(field, kwargs, message):
    args = dict(notional=1e6, rating="BBB", maturity_years=5.0, sigma_daily=0.002, daily_volume=3e6) | kwargs
    q = args.pop("notional")
    with pytest.raises(ValueError, match=field) as e:
        cost_breakdown(q, **args)
    assert message in str(e.value)


@pytest.mark.parametrize("kwargs,field", [(dict(permanent_fraction=1.5), "permanent_fraction"),
                                          (dict(half_spread_bp_by_rating=(1.0,) * 6), "half_spread_bp_by_rating"),
                                          (dict(crisis_mult_by_size=(1.0, 1.0, 0.9, 2.0)), "crisis_mult_by_size"),
                                          (dict(trading_minutes_per_day=0.0), "trading_minutes_per_day")])
def test_invalid_cost_model_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field): CostModel(**kwargs)


@settings(max_examples=500, deadline=None)
@given(q=st.floats(-5e7, 5e7), rating=ratings, maturity=maturities, client=clients, venue=venues, sigma=sigmas,
       volume=volumes, stress=stresses, share=shares, delay=delays)
def test_numba_twin_equals_python_model(q, rating, maturity, client, venue, sigma, volume, stress, share, delay):
    kp = cost_kernel_params()
    py = _trade(q, rating, maturity, client, venue, sigma, volume, stress, share, delay)
    nb = cost_breakdown_nb(q, RATINGS.index(rating), maturity_bucket_nb(maturity, kp), CLIENTS.index(client),
                           VENUES.index(venue), sigma, volume, stress, delay, share, kp)
    np.testing.assert_allclose(nb, [py[k] for k in PARTS[:4]], rtol=1e-12, atol=1e-9)


def test_v0_interface_kept_for_the_envs():
    "CreditSpreadEnv calls trade_cost_nb(notional, half_spread_bp, sigma_daily, daily_volume, impact_coef)."
    assert trade_cost_nb(1e6, 8.0, 0.003, 5e6, 1.0) == pytest.approx(2141.6408, abs=1e-3)
    assert trade_cost(1e6, 8.0, 0.003, 5e6) == pytest.approx(2141.6408, abs=1e-3)


@pytest.mark.parametrize("share,delay,sigma", [(0.0, 5.0, 0.002), (0.3, 15.0, 0.005), (1.0, 30.0, 0.01)])
def test_delay_cost_mean_and_variance_match_monte_carlo(share, delay, sigma):
    "Analytic E and Var of the latency cost against 400k draws (fixed seed), within 4 standard errors."
    q = -3e6
    mean, var = delay_cost_moments(q, sigma, delay, share)
    g = np.random.default_rng(12345)
    x = delay_cost_sample(q, sigma, delay, share, g.standard_normal(400_000), g.random(400_000))
    se_mean = x.std() / math.sqrt(x.size)
    se_var = math.sqrt((np.mean((x - x.mean()) ** 4) - x.var() ** 2) / x.size)
    assert abs(x.mean() - mean) < 4 * se_mean
    assert abs(x.var() - var) < 4 * se_var
    if share == 0: assert mean == 0.0
    else: assert mean > 4 * se_mean   # the adverse drift is detectable, not noise


def test_flat_fee_is_the_seeds_12_bp():
    assert flat_fee_cost(-2e6) == pytest.approx(2400.0)
    assert flat_fee_cost(1e6, fee_bp=10, slippage_bp=6) == pytest.approx(1600.0)
