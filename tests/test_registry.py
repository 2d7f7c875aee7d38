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
