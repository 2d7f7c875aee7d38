"""Exact resume after a real kill, determinism and the entropy schedule of `credit_rl.agents.ppo` PPO.

A training subprocess is killed with SIGKILL after a checkpoint lands, resumed in a fresh process that is killed in
turn, resumed again to the end; its final weights and Adam state must equal, bit for bit, those of an uninterrupted
run with the same seed in the test process."""
import dataclasses, os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
import torch

from credit_rl.agents.ppo import linear_schedule
from credit_rl.agents.training import latest_checkpoint
from credit_rl.studies.ppo_ig import TrainPPOParams, train_ppo
from credit_rl.config import from_dict

ROOT = Path(__file__).resolve().parents[1]
# 15 rollouts of 2 envs x 64 steps: long enough (a second or more) that a kill after a checkpoint lands mid-training
CFG = {"seed": 7, "total_timesteps": 1920, "eval_episodes": 2,
       "ppo": {"n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 2, "net_arch": [32, 32]}}
ROLLOUT = 2 * 64

TRAIN_SCRIPT = """
import sys, torch
from credit_rl.studies.ppo_ig import TrainPPOParams, train_ppo
from credit_rl.config import from_dict
cfg = from_dict(TrainPPOParams, {cfg!r})
model = train_ppo(cfg, log_every=10**9, checkpoint_dir=sys.argv[1], checkpoint_every={every})
torch.save(dict(policy=model.policy.state_dict(), optimizer=model.policy.optimizer.state_dict(),
                num_timesteps=model.num_timesteps, ent_coef=model.ent_coef), sys.argv[2])
"""


def _start(checkpoint_dir, out: Path) -> subprocess.Popen:
    script = TRAIN_SCRIPT.format(cfg=CFG, every=ROLLOUT)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, "-c", script, str(checkpoint_dir), str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_after_checkpoint_beyond(proc: subprocess.Popen, checkpoint_dir: Path, steps: int, timeout_s: float = 60) -> int:
    "SIGKILL `proc` as soon as a checkpoint with more than `steps` steps exists; returns that checkpoint's steps."
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        ckpt = latest_checkpoint(checkpoint_dir)
        if ckpt is not None and int(ckpt.stem.split("_")[1]) > steps:
            proc.send_signal(signal.SIGKILL); proc.wait(10)
            return int(ckpt.stem.split("_")[1])
        if proc.poll() is not None: break
        time.sleep(0.005)
    out = proc.communicate()[0] if proc.poll() is not None else ""
    pytest.fail(f"no checkpoint beyond {steps} steps appeared while training ran (rc={proc.poll()}):\n{out}")


def _assert_identical(a: dict, b: dict):
    assert a["num_timesteps"] == b["num_timesteps"] == CFG["total_timesteps"]
    assert a["policy"].keys() == b["policy"].keys()
    for k in a["policy"]:
        assert torch.equal(a["policy"][k], b["policy"][k]), f"parameter {k} differs"
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        for k in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(torch.as_tensor(sa[i][k]), torch.as_tensor(sb[i][k])), f"Adam {k} of param {i} differs"
    assert a["ent_coef"] == b["ent_coef"]


def test_kill_and_resume_gives_the_uninterrupted_weights(tmp_path):
    ckpt_dir = tmp_path / "checkpoints"
    first = _start(ckpt_dir, tmp_path / "resumed.pt")
    killed_at = _kill_after_checkpoint_beyond(first, ckpt_dir, 0)
    assert first.returncode == -signal.SIGKILL and not (tmp_path / "resumed.pt").exists()
    assert 0 < killed_at < CFG["total_timesteps"]

    second = _start(ckpt_dir, tmp_path / "resumed.pt")           # fresh process: resumes, killed again
    killed_again_at = _kill_after_checkpoint_beyond(second, ckpt_dir, killed_at)
    assert second.returncode == -signal.SIGKILL and not (tmp_path / "resumed.pt").exists()
    assert killed_again_at < CFG["total_timesteps"]
    assert "resumed from" in second.stdout.read()

    third = _start(ckpt_dir, tmp_path / "resumed.pt")            # fresh process: resumes and finishes
    model = train_ppo(from_dict(TrainPPOParams, CFG), log_every=10**9)   # meanwhile, uninterrupted here, no checkpoints
    reference = dict(policy=model.policy.state_dict(), optimizer=model.policy.optimizer.state_dict(),
                     num_timesteps=model.num_timesteps, ent_coef=model.ent_coef)
    log = third.communicate(timeout=120)[0]
    assert third.returncode == 0, log
    assert "resumed from" in log

    _assert_identical(reference, torch.load(tmp_path / "resumed.pt", weights_only=False))
    print(f"killed at {killed_at} and {killed_again_at} of {CFG['total_timesteps']} steps; resumed weights identical")


TINY = from_dict(TrainPPOParams, {**CFG, "total_timesteps": 1024})


def _weights(model) -> dict:
    return {k: v.clone() for k, v in model.policy.state_dict().items()}


def test_entropy_decay_ppo_is_deterministic_and_the_schedule_matters():
    decay = dataclasses.replace(TINY, ppo=dataclasses.replace(TINY.ppo, ent_coef=0.05, ent_coef_final=0.0))
    a, b = _weights(train_ppo(decay, log_every=10**9)), _weights(train_ppo(decay, log_every=10**9))
    assert all(torch.equal(a[k], b[k]) for k in a), "same seed must give identical weights"
    constant = dataclasses.replace(decay, ppo=dataclasses.replace(decay.ppo, ent_coef_final=0.05))
    c = _weights(train_ppo(constant, log_every=10**9))
    assert not all(torch.equal(a[k], c[k]) for k in a), "a decaying entropy bonus must change the training"


def test_tensorboard_logs_the_entropy_schedule(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    train_ppo(TINY, log_every=10**9, tensorboard_log=str(tmp_path))
    runs = sorted(tmp_path.glob("PPO_*"))
    assert [r.name for r in runs] == ["PPO_1"]
    events = EventAccumulator(str(runs[0])); events.Reload()
    logged = [(e.step, e.value) for e in events.Scalars("train/ent_coef")]
    # SB3 writes an update's train/ values at the next rollout's dump: updates 1..7 of 8 (the last is not dumped)
    assert len(logged) == TINY.total_timesteps // ROLLOUT - 1
    schedule = linear_schedule(TINY.ppo.ent_coef, TINY.ppo.ent_coef_final)
    for step, value in logged:   # logged at the step count of the next rollout; the update used progress at step - ROLLOUT
        np.testing.assert_allclose(value, schedule(1 - (step - ROLLOUT) / TINY.total_timesteps), rtol=1e-6)
    assert "rollout/ep_rew_mean" in events.Tags()["scalars"] or "train/entropy_loss" in events.Tags()["scalars"]


def test_progress_bar_and_argument_errors(tmp_path):
    from credit_rl.agents.ppo import make_ppo, make_train_env
    new_model = lambda: make_ppo(TINY.ppo, make_train_env(TINY.ppo, TINY.env, TINY.seed), TINY.seed)
    from credit_rl.agents.training import TqdmProgress, train_with_checkpoints
    bar = TqdmProgress(TINY.total_timesteps)
    model = train_with_checkpoints(new_model, TINY.total_timesteps, tmp_path, ROLLOUT * 4, callback=bar)
    assert bar.bar.n == model.num_timesteps == TINY.total_timesteps
    with pytest.raises(ValueError, match="checkpoint_every"):
        train_with_checkpoints(new_model, TINY.total_timesteps, tmp_path / "other", None)
    with pytest.raises(ValueError, match="holds a"):   # a PPO checkpoint cannot be loaded into another algorithm
        from stable_baselines3 import PPO
        from credit_rl.agents.training import load_checkpoint
        load_checkpoint(PPO("MlpPolicy", make_train_env(TINY.ppo, TINY.env, TINY.seed), device="cpu"), latest_checkpoint(tmp_path))


def test_the_same_utilities_resume_upgraded_dqn_exactly(tmp_path):
    "train_with_checkpoints is generic: UpgradedDQN (replay buffer, sum-tree, epsilon, target net) resumes bit for bit."
    dqn = pytest.importorskip("credit_rl.agents.dqn")
    from credit_rl.agents.training import list_checkpoints, train_with_checkpoints
    cfg = dqn.TrainDQNParams(seed=1, total_timesteps=2048,
                             dqn=dqn.DQNConfig(n_envs=4, buffer_size=5000, learning_starts=256, net_arch=[32, 32]))
    reference = train_with_checkpoints(lambda: dqn.make_dqn(cfg), cfg.total_timesteps)
    train_with_checkpoints(lambda: dqn.make_dqn(cfg), cfg.total_timesteps, tmp_path, 512, keep_last=None)
    for later in list_checkpoints(tmp_path)[1:]: later.unlink()      # as if killed after the first checkpoint (512)
    resumed = train_with_checkpoints(lambda: dqn.make_dqn(cfg), cfg.total_timesteps, tmp_path, 512)
    ref, res = reference.policy.state_dict(), resumed.policy.state_dict()
    assert all(torch.equal(ref[k], res[k]) for k in ref)
    assert resumed.exploration_rate == reference.exploration_rate and resumed._n_updates == reference._n_updates
