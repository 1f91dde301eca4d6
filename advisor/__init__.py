"""value-scaling-advisor: compute-optimal critic size, batch size and UTD for value-based deep RL.

    >>> import advisor
    >>> rec = advisor.recommend(advisor.Budget(compute=1e17), fit="bro/h1-crawl-v0")
"""

__version__ = "0.1.0"

from advisor.errors import (  # noqa: E402
    AdvisorError,
    BudgetError,
    ConfigError,
    ExportError,
    FitFileError,
    InfeasibleBudgetError,
    TargetError,
    UnknownFitError,
)
from advisor.fit import Fit  # noqa: E402

__all__ = [
    "AdvisorError", "BudgetError", "ConfigError", "ExportError", "Fit", "FitFileError",
    "InfeasibleBudgetError",
    "TargetError", "UnknownFitError", "__version__",
]
from advisor.recommend import Budget, Recommendation, recommend  # noqa: E402
from advisor.registry import list_fits, load_fit  # noqa: E402

__all__ += ["Budget", "Recommendation", "list_fits", "load_fit", "recommend"]
