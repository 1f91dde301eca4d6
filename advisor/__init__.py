"""value-scaling-advisor: compute-optimal critic size, batch size and UTD for value-based deep RL.

    >>> import advisor
    >>> rec = advisor.recommend(advisor.Budget(compute=1e17), fit="bro/h1-crawl-v0")

The names below load on first use (PEP 562): `import advisor` itself reads no numpy, scipy or
pydantic, so the `advisor` command can turn a Ctrl-C during its start into one line.
"""

from __future__ import annotations

import importlib
import sys
import types

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (type checkers: True)

__version__ = "0.1.0"

_NAMES = {
    "advisor.errors": ("AdvisorError", "BudgetError", "ConfigError", "ExportError",
                       "FitFileError", "InfeasibleBudgetError", "OutputError", "TargetError",
                       "UnknownFitError"),
    "advisor.fit": ("Fit",),
    "advisor.recommend": ("Budget", "Recommendation", "recommend"),
    "advisor.registry": ("list_fits", "load_fit"),
}
_SOURCE = {name: module for module, names in _NAMES.items() for name in names}
_SUBMODULES = frozenset({"cli", "errors", "files", "fit", "fitfile", "integrations", "laws",
                         "optimize", "recommend", "registry"})

__all__ = [  # _NAMES's, written out for linters and type checkers
    "AdvisorError", "Budget", "BudgetError", "ConfigError", "ExportError", "Fit", "FitFileError",
    "InfeasibleBudgetError", "OutputError", "Recommendation", "TargetError", "UnknownFitError",
    "__version__", "list_fits", "load_fit", "recommend",
]


for _name in _SOURCE:  # importlib.reload(advisor): resolve the names afresh
    globals().pop(_name, None)

if not TYPE_CHECKING:  # type checkers see the imports at the end, and flag a misspelt name

    def __getattr__(name: str):
        if name in _SOURCE:
            value = getattr(importlib.import_module(_SOURCE[name]), name)
        elif name in _SUBMODULES:
            value = importlib.import_module(f"{__name__}.{name}")
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__) | _SUBMODULES)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        # Importing the submodule advisor.recommend binds it here, over the function of the
        # same name; the function wins, as when this file imported it eagerly.
        if name in _SOURCE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:
    from advisor.errors import (
        AdvisorError,
        BudgetError,
        ConfigError,
        ExportError,
        FitFileError,
        InfeasibleBudgetError,
        OutputError,
        TargetError,
        UnknownFitError,
    )
    from advisor.fit import Fit
    from advisor.recommend import Budget, Recommendation, recommend
    from advisor.registry import list_fits, load_fit
