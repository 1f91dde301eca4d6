"""The heavy side of value-scaling-advisor: reading run logs, fitting laws, and (with the
`calibrate` extra) the PyTorch TD learner. Reading archives and fitting need only numpy/scipy.
Submodules are imported on first use, so `calibration.learner.agent` needs torch alone."""

from importlib import import_module

__all__ = ["Run", "read_runs"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(import_module("calibration.archives"), name)
    raise AttributeError(f"module 'calibration' has no attribute {name!r}")
