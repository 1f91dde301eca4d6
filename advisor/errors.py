"""Errors a user can cause. Each is a ValueError subclass whose message is one sentence."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class AdvisorError(ValueError):
    """Base class of every mistake a user can make with the advisor."""


class BudgetError(AdvisorError):
    """A budget that is missing, non-finite, non-positive or combined in a way we do not support."""


class InfeasibleBudgetError(BudgetError):
    """A budget too small to reach any (or the requested) target."""


class TargetError(AdvisorError):
    """A return target outside the fitted range."""


class UnknownFitError(AdvisorError):
    """A fit id that no shipped or installed fit file carries."""


class FitFileError(AdvisorError):
    """A fit file that is malformed, truncated, tampered with or from a future schema."""


class ConfigError(AdvisorError):
    """A utd, params or width that is not a positive finite number."""


class ExportError(AdvisorError):
    """A recommendation that an RL codebase (rl-zoo, Stable-Baselines3, CleanRL) cannot take as
    asked: a critic it cannot build, an env id it cannot read, a missing option."""


class OutputError(AdvisorError):
    """An output path that cannot be written (a directory, no permission, a full disk)."""


def one_line(err: ValidationError) -> str:
    """The first error of a pydantic ValidationError as `where: what (and N more: where, ...)`,
    naming where the others are (the first 6)."""
    errors = err.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"])
    others = [".".join(str(p) for p in e["loc"]) or "(top level)" for e in errors[1:]]
    more = (f" (and {len(others)} more: {', '.join(others[:6])}"
            f"{', ...' if len(others) > 6 else ''})" if others else "")
    msg = first["msg"].removeprefix("Value error, ")  # our validators' own words
    return f"{where + ': ' if where else ''}{msg}{more}".replace("\n", " ")


def printable(text: str) -> str:
    """`text` with control characters escaped (\\x1b, \\n, ...): a string read from a file
    cannot move the cursor, retitle the terminal or break a YAML comment."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown(x) -> str:
    """repr(x) for an error line, at most 40 characters (an integer of 400 digits, a string of
    a million, a whole fit file's model are not shown whole)."""
    text = printable(repr(x))
    return text if len(text) <= 40 else text[:37] + "..."


def span(low: float, high: float, spec: str = "g") -> str:
    """A range as 'low-high', or as 'low to high' where a bound is negative (Pendulum's
    returns -994.6 to -191.6 read '-994.6--191.6' with a hyphen)."""
    sep = " to " if min(low, high) < 0 else "-"
    return f"{low:{spec}}{sep}{high:{spec}}"
