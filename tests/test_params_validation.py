"""Params files are validated before anything runs: the error names the file, the dotted key, the
bad value and what is allowed. (The `credit-rl` CLI calls `read_yaml` + `from_dict`; we test those.)"""
from dataclasses import dataclass
from typing import Literal

import pytest

from credit_rl.config import ParamsError, from_dict, param, read_yaml, to_dict


@dataclass(frozen=True)
class EnvParams:
    kappa_per_yr: float = param(2.0, "OU mean-reversion speed, per year", gt=0, le=50)
    half_spread_bp: float = param(25.0, "client half-spread, bp", ge=0)
    regime: str = param("normal", "starting regime", choices=["calm", "normal", "stress"])


@dataclass(frozen=True)
class ExperimentParams:
    seed: int = param(0, "random seed", ge=0)
    agent: Literal["ppo", "dqn"] = param("ppo", "agent family")
    cost_bp: list[float] = param([8.0, 4.0], "fee and slippage, bp", ge=0)
    env: EnvParams = param(EnvParams(), "environment")


def load(path):
    return from_dict(ExperimentParams, read_yaml(path), source=str(path))


def error_text(path) -> str:
    with pytest.raises(ParamsError) as info:
        load(path)
    return str(info.value)


def test_out_of_range_names_file_key_value_and_range(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("seed: 3\nenv:\n  kappa_per_yr: 75.0\n")
    msg = error_text(f)
    assert str(f) in msg
    assert "env.kappa_per_yr: got 75.0 (float); allowed: > 0, <= 50" in msg


def test_every_problem_listed_once_per_line(tmp_path):
    f = tmp_path / "many.yaml"
    f.write_text("seed: -1\nagent: sac\ncost_bp: [8, -4]\nenv:\n  regime: panic\n  half_sprad_bp: 10\n")
    lines = error_text(f).splitlines()
    assert lines[0] == f"5 problems with the parameters in {f}:"
    body = "\n".join(lines[1:])
    assert "seed: got -1 (int); allowed: >= 0" in body
    assert "agent: got 'sac' (str); allowed: one of 'ppo', 'dqn'" in body
    assert "cost_bp[1]: got -4 (int); allowed: >= 0" in body
    assert "env.regime: got 'panic' (str); allowed: one of 'calm', 'normal', 'stress'" in body
    assert "env.half_sprad_bp: unknown key (did you mean 'env.half_spread_bp'?)" in body


def test_yaml_true_is_not_an_int_and_quoted_number_is_not_a_float(tmp_path):
    f = tmp_path / "types.yaml"
    f.write_text("seed: true\nenv:\n  kappa_per_yr: '2.0'\n")
    msg = error_text(f)
    assert "seed: got True (bool); allowed: int" in msg
    assert "env.kappa_per_yr: got '2.0' (str); allowed: float" in msg


def test_malformed_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("seed: 1\nenv:\n  kappa_per_yr: [1, 2\n  regime: calm\n")
    msg = error_text(f)
    assert str(f) in msg and "malformed YAML at line 4" in msg


def test_missing_file_is_a_file_not_found_naming_the_path(tmp_path):
    f = tmp_path / "absent.yaml"
    with pytest.raises(FileNotFoundError) as info:
        read_yaml(f)
    assert isinstance(info.value, ParamsError) and str(f) in str(info.value)


def test_valid_file_round_trips(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text("seed: 7\ncost_bp: [1e-4, 2]\nenv:\n  regime: stress\n")
    p = load(f)
    assert p.cost_bp == [1e-4, 2.0] and p.env.regime == "stress" and p.env.kappa_per_yr == 2.0
    assert from_dict(ExperimentParams, to_dict(p)) == p
