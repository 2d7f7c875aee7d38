"""Regime-conditioned PPO (credit_rl.agents.film, chapter params in credit_rl.studies.regime_ppo): exact resume through agents.train_agent and save/load of the custom extractor."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from stable_baselines3.common.callbacks import BaseCallback

from credit_rl.agents.ppo import EntropyDecayPPO
from credit_rl.agents.training import train_agent, train_with_checkpoints
from credit_rl.agents.film import make_regime_ppo, VARIANTS
from credit_rl.studies.regime_ppo import RegimePPOParams, train_params


def _tiny(seed=3):
    p = RegimePPOParams(seeds=[seed, seed + 1], total_timesteps=1024)
    return replace(train_params(p, seed), ppo=replace(p.ppo, n_envs=2, n_steps=128, batch_size=128, n_epochs=2))


def _weights(model):
    return {k: v.clone() for k, v in model.policy.state_dict().items()}


class _StopAt(BaseCallback):
    "Stops training (as a kill would) once `steps` environment steps are done, mid-rollout."
    def __init__(self, steps): super().__init__(); self.steps = steps
    def _on_step(self) -> bool: return self.num_timesteps < self.steps


def test_film_resume_equals_uninterrupted(tmp_path):
    "FiLM PPO stopped mid-rollout at 640 steps and resumed from its checkpoint ends with the uninterrupted run's weights, bit for bit."
    cfg = _tiny()
    full = train_agent(lambda: make_regime_ppo("film", cfg.ppo, cfg.env, cfg.seed), cfg, log_every=10_000)
    stopped = train_with_checkpoints(lambda: make_regime_ppo("film", cfg.ppo, cfg.env, cfg.seed), cfg.total_timesteps, tmp_path, every=256,
                                     callback=_StopAt(640), fingerprint=repr(cfg))
    assert stopped.num_timesteps < cfg.total_timesteps
    resumed = train_agent(lambda: make_regime_ppo("film", cfg.ppo, cfg.env, cfg.seed), cfg, 10_000, checkpoint_dir=tmp_path, checkpoint_every=256)
    assert resumed.num_timesteps == full.num_timesteps == 1024
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys() and any("cond_weight" in k for k in a)
    for k in a: assert torch.equal(a[k], b[k]), k
    assert not torch.equal(a["pi_features_extractor.layers.0.cond_weight"], _weights(make_regime_ppo("film", cfg.ppo, cfg.env, cfg.seed))["pi_features_extractor.layers.0.cond_weight"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_save_load_same_actions(tmp_path, variant):
    "A saved regime PPO loads with its extractor (variant, widths, regime columns) and acts identically."
    cfg = _tiny()
    model = make_regime_ppo(variant, cfg.ppo, cfg.env, cfg.seed).learn(256)
    model.save(tmp_path / "m.zip")
    loaded = EntropyDecayPPO.load(tmp_path / "m.zip", device="cpu")
    assert loaded.policy.pi_features_extractor.variant == variant
    assert loaded.policy.pi_features_extractor.hidden == model.policy.pi_features_extractor.hidden
    obs = np.random.default_rng(0).normal(size=(64, model.observation_space.shape[0])).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    with torch.no_grad():
        t = torch.as_tensor(obs)
        assert torch.equal(loaded.policy.predict_values(t), model.policy.predict_values(t))
