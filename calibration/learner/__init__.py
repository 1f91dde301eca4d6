"""The PyTorch TD learner: a BRO-style SAC population trained with stacked parameters.

Needs the `calibrate` extra (torch, gymnasium[mujoco]). `critic_params` is exact. Names are
imported on first use, so `calibration.learner.agent` needs torch alone (no gymnasium)."""

from importlib import import_module

_WHERE = {
    "AgentConfig": "agent", "Batch": "agent", "Noise": "agent", "Population": "agent",
    "quantile_huber_loss": "agent", "fused_quantile_huber_loss": "fused",
    "critic_params": "nets", "LearnerError": "trainer",
    "TrainConfig": "trainer", "train_population": "trainer",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"calibration.learner.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'calibration.learner' has no attribute {name!r}")
