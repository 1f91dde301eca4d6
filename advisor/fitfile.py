"""The fit file: a versioned JSON document validated by a pydantic model.

A fit file is data, never code: it is read with `json.loads`, validated by `FitFile`, and its
content hash is checked on load. `advisor schema` prints `FitFile.model_json_schema()`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from advisor.errors import FitFileError

SCHEMA_VERSION = 1

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provenance(_Strict):
    """Where a fit came from, so that anyone can regenerate it."""

    source: str = Field(description="Run data the fit was computed from (archive name and sha256).")
    command: str = Field(description="The exact command that produced this file.")
    project_version: str = Field(description="value-scaling-advisor version that produced it.")
    method: str = Field(description="Fitting method, in words.")
    notes: list[str] = Field(default_factory=list)


class ComputeDefinition(_Strict):
    """C = flops_per_param_sample * B * utd * params * data, with B the reference batch size
    unless `count_real_batch` (paper A drops the real batch size: k = 10 * 256)."""

    flops_per_param_sample: PositiveFloat = 10.0
    reference_batch_size: PositiveFloat = 256.0
    count_real_batch: bool = False


class Architecture(_Strict):
    """params(width) = sum_i coefficients[i] * width^(degree - i), for the whole critic."""

    description: str
    coefficients: list[FiniteFloat] = Field(min_length=1, description="Highest power first.")
    width_multiple: int = Field(ge=1, description="Recommended widths are rounded to this.")

    @model_validator(mode="after")
    def _leading_positive(self) -> Architecture:
        if self.coefficients[0] <= 0:
            raise ValueError("the leading coefficient of params(width) must be positive")
        return self


class Range(_Strict):
    low: FiniteFloat
    high: FiniteFloat

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low <= self.high:
            raise ValueError(f"range low {self.low} is above high {self.high}")
        return self


class Domain(_Strict):
    """The configurations the fit saw; recommendations outside are flagged `extrapolated`."""

    utd: Range
    params: Range
    target: Range


class DataLaw(_Strict):
    """D_J(utd, params) = d_min + (a / utd)^alpha + (b / params)^beta at one return threshold."""

    target: FiniteFloat
    d_min: NonNegFloat
    a: PositiveFloat
    alpha: PositiveFloat
    b: PositiveFloat
    beta: PositiveFloat


class DataToTarget(_Strict):
    """Per-threshold laws, thresholds increasing; targets between thresholds interpolate the
    coefficients linearly (d_min, alpha, beta) and log-linearly (a, b)."""

    laws: list[DataLaw] = Field(min_length=1)

    @model_validator(mode="after")
    def _increasing(self) -> DataToTarget:
        targets = [law.target for law in self.laws]
        if any(t1 <= t0 for t0, t1 in zip(targets, targets[1:])):
            raise ValueError("data_to_target thresholds must be strictly increasing")
        return self


class BatchSizeLaw(_Strict):
    """B~(utd, params) = a_b / (utd^alpha_b (1 + b_b params^-beta_b)), paper A Eq. 6.1.

    kind "fixed": the runs used one batch size (`a_b`), alpha_b = b_b = beta_b = 0.
    """

    kind: Literal["law", "fixed"]
    source: Literal["fitted", "published", "fixed"]
    a_b: PositiveFloat
    alpha_b: NonNegFloat = 0.0
    b_b: NonNegFloat = 0.0
    beta_b: NonNegFloat = 0.0
    relative_error: NonNegFloat | None = Field(
        default=None, description="Mean relative error of the fit on the measured best batches."
    )


class Bootstrap(_Strict):
    """Parameter draws from refits on seed-resampled data, for intervals.

    draws[k][j] = [d_min, a, alpha, b, beta] of draw k at threshold j."""

    n_resamples: int = Field(ge=0)
    seed: int
    draws: list[list[Annotated[list[FiniteFloat], Field(min_length=5, max_length=5)]]]


class GoodnessOfFit(_Strict):
    """Mean relative error |D_pred - D_obs| / D_obs over (config, threshold) points."""

    n_configs: int
    n_points: int
    in_sample: NonNegFloat
    leave_one_config_out: NonNegFloat
    leave_one_config_out_headline: NonNegFloat | None = Field(
        default=None, description="Leave-one-config-out error at the top threshold only."
    )
    baseline_loglinear_leave_one_config_out: NonNegFloat | None = None


class FitFile(_Strict):
    """One fitted domain: (algorithm, environment)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+$")
    fit_version: int = Field(ge=1)
    created: str = Field(description="ISO date the fit was produced.")
    provenance: Provenance
    compute: ComputeDefinition
    architecture: Architecture
    domain: Domain
    data_to_target: DataToTarget
    batch_size: BatchSizeLaw
    delta: PositiveFloat = Field(description="FLOPs charged per env step.")
    learning_rate: PositiveFloat
    bootstrap: Bootstrap
    goodness_of_fit: GoodnessOfFit
    content_hash: str = Field(default="", description="sha256 of the canonical JSON without this field.")

    @model_validator(mode="after")
    def _consistent(self) -> FitFile:
        n = len(self.data_to_target.laws)
        for k, draw in enumerate(self.bootstrap.draws):
            if len(draw) != n:
                raise ValueError(f"bootstrap draw {k} has {len(draw)} thresholds, expected {n}")
        return self


def content_hash(doc: dict) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of `doc` without `content_hash`."""
    body = {k: v for k, v in doc.items() if k != "content_hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def parse_fit_file(text: str, origin: str = "fit file") -> FitFile:
    """Parse and validate a fit file's text; raises FitFileError with one line on any problem."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FitFileError(f"{origin} is not valid JSON (truncated or malformed): {exc}") from None
    if not isinstance(doc, dict):
        raise FitFileError(f"{origin} must hold a JSON object, not {type(doc).__name__}")
    version = doc.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise FitFileError(
            f"{origin} has schema version {version}, newer than the {SCHEMA_VERSION} this "
            "value-scaling-advisor reads; upgrade the package"
        )
    try:
        model = FitFile.model_validate(doc)
    except ValidationError as exc:
        raise FitFileError(f"{origin} does not match the fit-file schema: {_one_line(exc)}") from None
    expected = content_hash(doc)
    if model.content_hash != expected:
        raise FitFileError(
            f"{origin} content hash does not match its contents (edited or corrupted); "
            "regenerate it with `advisor fit` or restore the original"
        )
    return model


def read_fit_file(path: str | os.PathLike) -> FitFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FitFileError(f"fit file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FitFileError(f"fit file {path} cannot be read: {exc}") from None
    return parse_fit_file(text, origin=f"fit file {path}")


def dump_fit_file(model: FitFile) -> str:
    """The canonical text of a fit file, with its content hash filled in."""
    doc = model.model_dump(mode="json")
    _check_finite(doc)
    doc["content_hash"] = content_hash(doc)
    # One line per bootstrap draw keeps files small and diffs readable.
    draws = doc["bootstrap"]["draws"]
    doc["bootstrap"]["draws"] = [f"@@DRAW{i}@@" for i in range(len(draws))]
    text = json.dumps(doc, indent=1, sort_keys=False, allow_nan=False)
    for i, draw in enumerate(draws):
        text = text.replace(f'"@@DRAW{i}@@"', json.dumps(draw, separators=(",", ":")), 1)
    return text + "\n"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename (readable 0644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_fit_file(model: FitFile, path: str | os.PathLike) -> Path:
    """Write a fit file atomically."""
    return atomic_write_bytes(path, dump_fit_file(model).encode("utf-8"))


def _check_finite(obj: object) -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError("fit file would contain a non-finite number")
    if isinstance(obj, dict):
        for v in obj.values():
            _check_finite(v)
    elif isinstance(obj, list):
        for v in obj:
            _check_finite(v)
