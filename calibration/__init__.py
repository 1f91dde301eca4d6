"""The heavy side of value-scaling-advisor: reading run logs, fitting laws, and (with the
`calibrate` extra) the PyTorch TD learner. Reading archives and fitting need only numpy/scipy."""

from calibration.archives import Run, read_runs

__all__ = ["Run", "read_runs"]
