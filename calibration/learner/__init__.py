"""The PyTorch TD learner: a BRO-style SAC population trained with stacked parameters.

Needs the `calibrate` extra (torch, gymnasium[mujoco]). `critic_params` is exact.
"""

from calibration.learner.agent import AgentConfig, Batch, Noise, Population, quantile_huber_loss
from calibration.learner.nets import critic_params
from calibration.learner.trainer import LearnerError, TrainConfig, train_population

__all__ = ["AgentConfig", "Batch", "LearnerError", "Noise", "Population", "TrainConfig",
           "critic_params", "quantile_huber_loss", "train_population"]
