"""The shipped fits and the constants of their tasks (paper A Table 2, the BRO DMC data).

`catalogue()` says, for every shipped fit, which archive it comes from; the dicts below give
each task's return range, step limit, delta and critic input size, and paper A's published
best-batch coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Env step limits of paper A; other envs default to DEFAULT_STEP_LIMIT.
STEP_LIMITS = {"h1-crawl-v0": 1_000_000, "h1-stand-v0": 1_000_000, "humanoid-stand": 1_000_000,
               "h1-pole-v0": 1_500_000}
DEFAULT_STEP_LIMIT = 2_000_000

#: Return ranges [J_min, J_max] of paper A Table 2 and of the DMC BRO tasks.
TARGET_RANGES = {
    "h1-crawl-v0": (450, 780), "h1-pole-v0": (300, 680), "h1-stand-v0": (200, 660),
    "humanoid-stand": (300, 850),
    "acrobot-swingup": (150, 400), "cheetah-run": (400, 750), "finger-turn": (400, 900),
    "fish-swim": (200, 710), "hopper-hop": (150, 320), "quadruped-run": (200, 790),
    "walker-run": (350, 730), "dog-run": (100, 270), "dog-trot": (100, 580),
    "dog-stand": (100, 910), "dog-walk": (100, 860), "humanoid-run": (75, 190),
    "humanoid-walk": (200, 650),
}

#: Published best-batch coefficients (paper A, Appendix D.1): a_B, alpha_B, b_B, beta_B.
PUBLISHED_BATCH = {
    "h1-crawl-v0": (1680.64, 0.30, 6.01e7, 1.12),
    "h1-pole-v0": (4112.98, 0.24, 1.45e1, 0.07),
    "h1-stand-v0": (1458.10, 0.27, 1.33e74, 12.71),
    "humanoid-stand": (1160.40, 0.49, 2.77e2, 0.38),
}

#: delta, FLOPs per env step (paper A Table 2; DMC tasks of the BRO data use 1e11).
DELTA = {"h1-crawl-v0": 2e12, "h1-pole-v0": 5e11, "h1-stand-v0": 5e11, "humanoid-stand": 5e10}
DMC_DELTA = 1e11

#: Critic input size (obs + action dims) per env, for the BroNet parameter polynomial.
INPUT_DIM = {
    "h1-crawl-v0": 70, "h1-pole-v0": 70, "h1-stand-v0": 70, "humanoid-stand": 88,
    "acrobot-swingup": 7, "cheetah-run": 23, "finger-turn": 14, "fish-swim": 29,
    "hopper-hop": 19, "quadruped-run": 90, "walker-run": 30, "dog-run": 261, "dog-trot": 261,
    "dog-stand": 261, "dog-walk": 261, "humanoid-run": 88, "humanoid-walk": 88,
}
DMC_TASKS = ["acrobot-swingup", "cheetah-run", "finger-turn", "fish-swim", "hopper-hop",
             "quadruped-run", "walker-run", "dog-run", "dog-trot", "dog-stand", "dog-walk",
             "humanoid-run", "humanoid-walk"]


@dataclass(frozen=True)
class Spec:
    """How one shipped fit is made."""

    algorithm: str
    env: str
    archive: str

    @property
    def id(self) -> str:
        return f"{self.algorithm}/{self.env}"


def catalogue() -> list[Spec]:
    """Every shipped fit and its archive (file names under ../shared/data)."""
    specs = [Spec("bro", env, "fitted_bs.zip") for env in
             ["h1-crawl-v0", "h1-pole-v0", "h1-stand-v0", "humanoid-stand"]]
    specs += [Spec("simbav2", env, "simbav2_model_scaling_linear20_with_base.zip")
              for env in ["h1-crawl-v0", "h1-stand-v0"]]
    specs += [Spec("bro", env, "dmc_bro_ablations.zip") for env in DMC_TASKS]
    return specs
