"""`import credit_rl` registers every gymnasium id (fresh interpreters: nothing imported before)."""
import subprocess
import sys

import pytest

from credit_rl.envs import ENV_IDS


def _run(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_import_credit_rl_registers_the_id(env_id):
    _run(f'import credit_rl, gymnasium; gymnasium.make("{env_id}")')


def test_import_credit_rl_stays_light():
    out = _run("import sys, credit_rl; print(sorted(m for m in ('numba', 'torch', 'pandas') if m in sys.modules))")
    assert out.strip() == "[]", out


@pytest.mark.parametrize("env_id,n_extra", [("credit_rl/CreditSpread-v0", 3), ("credit_rl/CrossAsset-v0", 8)])
def test_make_takes_the_feature_set(env_id, n_extra):
    "`features=` is a config-field override of gymnasium.make; the observation space follows the set; a bad set names the field."
    out = _run(f'import credit_rl, gymnasium\n'
               f'b, s = gymnasium.make("{env_id}"), gymnasium.make("{env_id}", features="seed")\n'
               f'print(s.observation_space.shape[0] - b.observation_space.shape[0], s.reset(seed=0)[0].shape == s.observation_space.shape)\n'
               f'try: gymnasium.make("{env_id}", features="nope")\n'
               f'except ValueError as e: print("features" in str(e) and "base" in str(e) and "seed" in str(e))')
    assert out.split() == [str(n_extra), "True", "True"], out
