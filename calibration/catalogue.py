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

#: Env steps of uniformly random actions before the first update in an archive's runs, where
#: known (an RL client's learning_starts; fit files record it), by the archive's sha256 (its
#: contents, whatever its file name): paper A's BRO runs, fitted_bs.zip, take 2,500
#: (reference.md). The older DMC BRO runs and SimbaV2's do not say.
RANDOM_STEPS = {"c5f87a675d83d71837835a4111d3c2e5cc0e4256c2b58828df791a8288696bbe": 2_500}

#: delta, FLOPs per env step (paper A Table 2; DMC tasks of the BRO data use 1e11).
DELTA = {"h1-crawl-v0": 2e12, "h1-pole-v0": 5e11, "h1-stand-v0": 5e11, "humanoid-stand": 5e10}
DMC_DELTA = 1e11

#: Critic input size (obs + action dims) per env, for the BroNet parameter polynomial.
INPUT_DIM = {
    "h1-crawl-v0": 70, "h1-pole-v0": 70, "h1-stand-v0": 70, "humanoid-stand": 88,
    "acrobot-swingup": 7, "cheetah-run": 23, "finger-turn": 14, "fish-swim": 29,
    "hopper-hop": 19, "quadruped-run": 90, "walker-run": 30, "dog-run": 261, "dog-trot": 261,
    "dog-stand": 261, "dog-walk": 261, "humanoid-run": 88, "humanoid-walk": 88,
    # MetaWorld v2: 39 observations + 4 actions.
    "stick-pull-v2-goal-observable": 43, "sweep-v2-goal-observable": 43,
    # MyoSuite (myoHand, 39 muscles): observation sizes of gym.make(...) in MyoSuite 3.0.0
    # (INPUT_DIM_NOTES); BRO's runs may have used an older MyoSuite.
    "myo-key-turn": 93 + 39, "myo-pen-twirl-hard": 83 + 39, "myo-reach-hard": 115 + 39,
    "pendulum-swingup": 3 + 1,
}
#: Where an input size is not read off a published table, the fit's notes say so.
INPUT_DIM_NOTES = {
    env: f"critic input {dim} = observations + 39 muscle actions of {gym_id} as gym.make builds "
         "it in MyoSuite 3.0.0 (BRO may have used an older MyoSuite; 10 inputs more or less "
         "change params by about 2 x 10 x width, under 1% at these sizes)"
    for env, dim, gym_id in (("myo-key-turn", 132, "myoHandKeyTurnFixed-v0"),
                             ("myo-pen-twirl-hard", 122, "myoHandPenTwirlRandom-v0"),
                             ("myo-reach-hard", 154, "myoHandReachRandom-v0"))
}
INPUT_DIM_NOTES.update({env: "critic input 43 = 39 observations + 4 actions (MetaWorld v2)"
                        for env in ("stick-pull-v2-goal-observable", "sweep-v2-goal-observable")})
DMC_TASKS = ["acrobot-swingup", "cheetah-run", "finger-turn", "fish-swim", "hopper-hop",
             "quadruped-run", "walker-run", "dog-run", "dog-trot", "dog-stand", "dog-walk",
             "humanoid-run", "humanoid-walk"]
#: Tasks of dmc_bro_ablations.zip without a published return range whose laws validate on the
#: shipped protocol (thresholds from the data, calibration.calibrate.choose_targets; LOCO error
#: below the log-linear baseline's and at most MAX_SHIPPED_ERROR, neither exponent at a fit
#: bound: benchmarks/catalogue_check.py), with the readable fit name of each.
ABLATION_TASKS = {"stick-pull-v2-goal-observable": "stick-pull-v2",
                  "sweep-v2-goal-observable": "sweep-v2",
                  "myo-pen-twirl-hard": "myo-pen-twirl-hard", "myo-reach-hard": "myo-reach-hard"}
MAX_SHIPPED_ERROR = 0.30

#: Named families a few-shot fit can borrow from (`advisor fit --prior dmc`): many tasks, one
#: algorithm, one evaluation protocol (calibration.prior).
FAMILIES = {"dmc": [f"bro/{env}" for env in DMC_TASKS]}


@dataclass(frozen=True)
class Spec:
    """How one shipped fit is made."""

    algorithm: str
    env: str
    archive: str
    name: str | None = None  # the env part of the fit id, when not the archive's env name

    @property
    def id(self) -> str:
        return f"{self.algorithm}/{self.name or self.env}"

    @property
    def file_name(self) -> str:
        return f"{self.name or self.env}.json"


def catalogue() -> list[Spec]:
    """Every shipped fit and its archive (file names under ../shared/data)."""
    specs = [Spec("bro", env, "fitted_bs.zip") for env in
             ["h1-crawl-v0", "h1-pole-v0", "h1-stand-v0", "humanoid-stand"]]
    specs += [Spec("simbav2", env, "simbav2_model_scaling_linear20_with_base.zip")
              for env in ["h1-crawl-v0", "h1-stand-v0"]]
    specs += [Spec("bro", env, "dmc_bro_ablations.zip") for env in DMC_TASKS]
    specs += [Spec("bro", env, "dmc_bro_ablations.zip", None if name == env else name)
              for env, name in ABLATION_TASKS.items()]
    return specs
