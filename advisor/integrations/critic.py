"""The critic a fit describes, and what each RL codebase can build of it.

The BroNet fits describe the double critic of calibration/learner/nets.py. Per Q-net:
Dense(in -> w) -> LayerNorm -> ReLU, `blocks` residual blocks
[Dense -> LayerNorm -> ReLU -> Dense -> LayerNorm] + skip, and a Dense head with `quantiles`
outputs. Both Q-nets together (the fit's `architecture.coefficients`):

    params(w) = 4 blocks w^2 + 2 (in + 3 + 6 blocks + quantiles) w + 2 quantiles

so blocks = c0 / 4, quantiles = c2 / 2 and in = c1 / 2 - 3 - 6 blocks - quantiles (input 70,
2 blocks, 100 quantiles: 8w^2 + 370w + 200). Stable-Baselines3's SAC learns a scalar Q, so no
client here builds the quantile head: `CriticMatch` says exactly how many parameters are missing.

A fit of a tidy CSV's own widths (`advisor tidy` of rl-zoo runs of SB3's MlpPolicy) describes
the runs' critic by its params(width) alone. Where that polynomial is exactly a plain MLP's,
`qnets` Q-nets of Linear(in -> w), `layers - 1` Linear(w -> w) and Linear(w -> 1):

    params(w) = qnets (layers - 1) w^2 + qnets (in + layers + 1) w + qnets

it is read as that MLP (`MlpShape`), which SB3's MlpPolicy builds (net_arch qf [w] * layers,
n_critics qnets): the exports give the runs' own critic at the recommended width.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from advisor.errors import ExportError

if TYPE_CHECKING:
    from advisor.fit import Fit
    from advisor.recommend import Recommendation

Critic = Literal["bronet", "mlp"]
#: Critics the Stable-Baselines3 exports can build: the fit's BroNet (with BroNetSACPolicy) or
#: the plain MLP with the same Dense layers (SB3's MlpPolicy).
CRITICS: tuple[str, ...] = ("bronet", "mlp")
N_QNETS = 2
#: CleanRL's sac_continuous_action.py: SoftQNetwork is Linear(in, 256) -> Linear(256, 256) ->
#: Linear(256, 1) with ReLU, hard-coded.
CLEANRL_WIDTH = 256


@dataclass(frozen=True)
class BroNetShape:
    """The BroNet of a fit: critic input dim (obs + action), residual blocks, quantile outputs."""

    input_dim: int
    blocks: int
    quantiles: int

    def per_qnet(self, width: int, head: int | None = None) -> int:
        """Parameters of one Q-net at `width` with `head` outputs (default: the quantiles)."""
        q = self.quantiles if head is None else head
        b, w = self.blocks, width
        return 2 * b * w * w + (self.input_dim + 3 + 6 * b + q) * w + q

    def params(self, width: int, head: int | None = None) -> int:
        """Parameters of both Q-nets (what the fit calls params at `width` for head=None)."""
        return N_QNETS * self.per_qnet(width, head)

    @property
    def hidden_layers(self) -> int:
        """Dense w -> w layers plus the input layer: the depth of the matching plain MLP."""
        return 1 + 2 * self.blocks


@dataclass(frozen=True)
class MlpShape:
    """A plain MLP critic read off a CSV fit's params(width): `qnets` Q-nets of `layers` hidden
    layers of width w on `input_dim` inputs (obs + action), each with a scalar head; what SB3's
    MlpPolicy builds with net_arch qf [w] * layers and n_critics qnets."""

    input_dim: int
    layers: int
    qnets: int

    def per_qnet(self, width: int) -> int:
        w = width
        return (self.input_dim + 1) * w + (self.layers - 1) * (w * w + w) + w + 1

    def params(self, width: int) -> int:
        return self.qnets * self.per_qnet(width)

    def describe(self) -> str:
        return (f"plain MLP, {self.layers} hidden layer{'s' * (self.layers > 1)} x "
                f"{self.qnets} Q-net{'s' * (self.qnets > 1)}, input {self.input_dim}")


#: Largest Q-net count, depth and input an MLP reading accepts (beyond: not an MLP's polynomial).
_MLP_MOST = 10_000_000


def mlp_shape(fit: Fit) -> MlpShape | None:
    """The plain MLP a CSV fit's params(width) is exactly (see the module docstring), or None
    (a fit of another critic, or a polynomial no MLP has)."""
    from advisor.fitfile import CSV_CRITIC  # here: `advisor --help` loads no numpy

    arch = fit.model.architecture
    if not arch.description.startswith(CSV_CRITIC):
        return None
    c = [float(v) for v in arch.coefficients]
    c = [0.0] * (3 - len(c)) + c if len(c) <= 3 else c
    if len(c) != 3:
        return None
    qnets = round(c[2])
    if not 1 <= qnets <= _MLP_MOST:
        return None
    layers, input_dim = c[0] / qnets + 1, c[1] / qnets - c[0] / qnets - 2
    values = (c[2], layers, input_dim)
    if not all(abs(v - round(v)) < 1e-6 * max(1.0, abs(v)) and 1 <= round(v) <= _MLP_MOST
               for v in values):
        return None
    shape = MlpShape(input_dim=round(input_dim), layers=round(layers), qnets=qnets)
    widths = (1, 16, 256, 4096)  # the polynomial and its reading agree: exactly that MLP
    if all(math.isclose(shape.params(w), float(fit.params(w)), rel_tol=1e-9, abs_tol=1e-6)
           for w in widths):
        return shape
    return None


def default_critic(fit: Fit) -> str:
    """The critic an export builds when none is named: the fit's own, "mlp" for a fit of MLP
    runs (`mlp_shape`), "bronet" for every other."""
    return "mlp" if mlp_shape(fit) is not None else "bronet"


def resolve_critic(rec: Recommendation, critic: str | None, fit: Fit | str | None = None
                   ) -> str:
    """`critic`, or where None the critic of the fit behind `rec` (default_critic)."""
    return default_critic(fit_of(rec, fit)) if critic is None else critic


def _poly(c: list[float]) -> str:
    terms = [f"{v:g}w^{len(c) - 1 - i}" if len(c) - 1 - i > 1 else
             (f"{v:g}w" if len(c) - 1 - i == 1 else f"{v:g}") for i, v in enumerate(c)]
    return " + ".join(terms).replace("+ -", "- ")


def bronet_shape(fit: Fit) -> BroNetShape:
    """The BroNet a fit describes, read from its architecture; ExportError if it is no BroNet
    (SimbaV2 fits: hyperspherical-normalised blocks no client here can build)."""
    arch = fit.model.architecture
    c = arch.coefficients
    if "bronet" in arch.description.lower() and len(c) == 3:
        blocks, quantiles = c[0] / 4, c[2] / 2
        input_dim = c[1] / 2 - 3 - 6 * blocks - quantiles
        values = (blocks, quantiles, input_dim)
        if all(abs(v - round(v)) < 1e-9 and round(v) >= 1 for v in values):
            return BroNetShape(input_dim=round(input_dim), blocks=round(blocks),
                               quantiles=round(quantiles))
    from advisor.fitfile import CSV_CRITIC  # here: `advisor --help` loads no numpy

    mlp = mlp_shape(fit)
    if mlp is not None:
        raise ExportError(
            f"{fit.id}'s critic is a {mlp.describe()} (params(width) = {_poly(c)}, fitted to "
            "its runs), not a BroNet: the mlp critic (--critic mlp, SB3's MlpPolicy) builds it")
    if arch.description.startswith(CSV_CRITIC):
        raise ExportError(
            f"{fit.id} counts the critic of the runs it was fitted on (params(width) = "
            f"{_poly(c)}, fitted to its CSV's width and params), which is neither a BroNet nor a "
            "plain MLP the exports can build: give that critic the recommended width yourself "
            "(SB3: policy_kwargs net_arch's qf layers), with the rest from json/yaml or the "
            "CleanRL flags")
    raise ExportError(
        f"{fit.id} describes a critic that is not a BroNet ({arch.description}: params(width) = "
        f"{_poly(c)}), which Stable-Baselines3 and rl-zoo cannot build; use a bro/ fit, or the "
        "CleanRL flags or json/yaml, which leave the critic to you")


def check_rec(rec) -> None:
    """A one-line ExportError unless `rec` is a Recommendation (None raised AttributeError)."""
    from advisor.recommend import Recommendation

    if not isinstance(rec, Recommendation):
        raise ExportError(f"expected a Recommendation (advisor.recommend's result), got "
                          f"{type(rec).__name__} {str(rec)[:60]!r}")


def fit_of(rec: Recommendation, fit: Fit | str | None = None) -> Fit:
    """The fit behind `rec`: `fit` (a Fit, an id or a path) if given, else rec.fit by id."""
    from advisor.errors import UnknownFitError
    from advisor.registry import list_fits, load_fit

    check_rec(rec)

    if fit is None and rec.fit not in list_fits():  # made from a file: its id is not installed
        raise UnknownFitError(f"the recommendation comes from fit {rec.fit}, which is not "
                              "installed: pass fit= (the Fit or the file recommend() used)")
    f = load_fit(rec.fit if fit is None else fit)
    if f.id != rec.fit:
        raise ExportError(f"the recommendation comes from fit {rec.fit}, not {f.id}: pass the "
                          "fit it was made with")
    if not math.isclose(float(f.params(rec.width)), rec.params, rel_tol=1e-9):
        # another file with this id (your own fit named like a shipped one): not its critic
        raise UnknownFitError(f"the recommendation's critic ({rec.params:.6g} params at width "
                              f"{rec.width}) is not fit {f.id}'s as installed "
                              f"({float(f.params(rec.width)):.6g}): it was made from another file "
                              "with that id; pass fit= (the Fit or the file recommend() used)")
    return f


@dataclass(frozen=True)
class CriticMatch:
    """A client's critic against the fit's at the recommended width (both Q-nets)."""

    client: str
    structure: str
    width: int
    input_dim: int
    params_fit: int
    params_client: int
    missing: str
    # The env's own obs + action size where it is known and differs from the fit's: the
    # client's critic is counted at it (what the client builds on that env).
    client_input_dim: int | None = None
    # The fit's critic, as the note names it: "BroNet", or "MLP" for a fit of MLP runs.
    fit_critic: str = "BroNet"

    @property
    def shortfall(self) -> int:
        """Parameters the client's critic lacks (negative: it has more)."""
        return self.params_fit - self.params_client

    @property
    def share(self) -> float:
        """params_client / params_fit."""
        return self.params_client / self.params_fit

    @property
    def note(self) -> str:
        """One line: structure and parameter shortfall."""
        on_env = ("" if self.client_input_dim is None else
                  f" at the env's input {self.client_input_dim} = obs + action")
        return (f"{self.client} critic: {self.structure}; {self.params_client:,} params"
                f"{on_env}, {100 * self.share:.1f}% of the fit's {self.params_fit:,} "
                f"({self.fit_critic} at width {self.width}, input {self.input_dim} = obs + "
                f"action): {self.missing}")


def critic_match(rec: Recommendation, critic: str = "mlp", *, fit: Fit | str | None = None,
                 input_dim: int | None = None) -> CriticMatch:
    """What Stable-Baselines3 builds for `critic` ("bronet": BroNetSACPolicy, "mlp": MlpPolicy
    with the BroNet's Dense layers, "cleanrl": CleanRL's fixed SoftQNetwork) against the fit's
    BroNet at rec.width; `input_dim`: the env's obs + action size, where the client's critic
    is built (default: the fit's). ExportError for fits that are not BroNets or an unknown
    critic."""
    if input_dim is not None:
        given = input_dim
        try:  # any integer (numpy's too), not a float or a bool
            input_dim = -1 if isinstance(given, bool) else operator.index(given)
        except TypeError:
            input_dim = -1
        if input_dim < 1:
            raise ExportError(f"input_dim is the env's observation + action size, a whole number "
                              f"of at least 1, got {given!r}")
    f = fit_of(rec, fit)
    mlp = mlp_shape(f)
    if mlp is not None:
        return _mlp_match(rec, critic, f, mlp, input_dim)
    shape = bronet_shape(f)
    w, b, q = rec.width, shape.blocks, shape.quantiles
    params_fit = shape.params(w)
    other = input_dim is not None and input_dim != shape.input_dim
    n_in = input_dim if other else shape.input_dim
    client_shape = BroNetShape(n_in, b, q)
    if abs(params_fit - rec.params) > 1e-6 * rec.params:  # the polynomial and its reading agree
        raise AssertionError(f"BroNet reading of {f.id} gives {params_fit} params at width {w}, "
                             f"the fit {rec.params}")
    head = f"a scalar head instead of {q} quantiles"
    if critic == "bronet":
        return CriticMatch(
            client="SB3 BroNetSACPolicy",
            structure=f"the fit's BroNet ({b} residual blocks, LayerNorm, width {w}) x "
                      f"{N_QNETS} Q-nets, scalar head",
            width=w, input_dim=shape.input_dim, params_fit=params_fit,
            params_client=client_shape.params(w, 1), client_input_dim=n_in if other else None,
            missing=(f"{head} (SB3's SAC learns a scalar Q): {q - 1}w+{q - 1} = "
                     f"{(q - 1) * (w + 1):,} fewer params per Q-net" if q > 1 else
                     "nothing: the fit's critic has a scalar head too"))
    if critic == "mlp":
        layers = shape.hidden_layers
        per_qnet = (n_in + 1) * w + (layers - 1) * (w * w + w) + (w + 1)
        ln = 2 * (1 + 2 * b)
        return CriticMatch(
            client="SB3 MlpPolicy",
            structure=f"plain MLP, {layers} hidden layers of width {w} with ReLU (the BroNet's "
                      f"Dense layers without LayerNorm or residual skips) x {N_QNETS} Q-nets, "
                      "scalar head",
            width=w, input_dim=shape.input_dim, params_fit=params_fit,
            params_client=N_QNETS * per_qnet, client_input_dim=n_in if other else None,
            missing=(f"no LayerNorm ({ln}w) and {head} ({q - 1}w+{q - 1}): "
                     f"{ln + q - 1}w+{q - 1} = {(ln + q - 1) * w + q - 1:,} fewer params per "
                     "Q-net" if q > 1 else f"no LayerNorm: {ln}w = {ln * w:,} fewer params per "
                     "Q-net") + "; the bronet critic (BroNetSACPolicy) keeps the fit's "
                    "structure")
    if critic == "cleanrl":
        c = CLEANRL_WIDTH
        per_qnet = (n_in + 1) * c + (c * c + c) + (c + 1)
        return CriticMatch(
            client="CleanRL sac_continuous_action.py",
            structure=f"hard-coded {c}-{c} ReLU MLP x {N_QNETS} Q-nets, scalar head (no flag "
                      "sets its width)",
            width=w, input_dim=shape.input_dim, params_fit=params_fit,
            params_client=N_QNETS * per_qnet, client_input_dim=n_in if other else None,
            missing=f"no flag sets the recommended width {w}")
    raise ExportError(f"critic must be one of {', '.join(CRITICS)}, got {critic!r}")


def _mlp_match(rec: Recommendation, critic: str, fit: Fit, shape: MlpShape,
               input_dim: int | None) -> CriticMatch:
    """critic_match for a fit of plain MLP runs: SB3's MlpPolicy builds that MLP exactly."""
    w = rec.width
    params_fit = shape.params(w)
    if abs(params_fit - rec.params) > 1e-6 * rec.params:  # the polynomial and its reading agree
        raise AssertionError(f"MLP reading of {fit.id} gives {params_fit} params at width {w}, "
                             f"the fit {rec.params}")
    other = input_dim is not None and input_dim != shape.input_dim
    n_in = input_dim if other else shape.input_dim
    common = dict(width=w, input_dim=shape.input_dim, params_fit=params_fit,
                  client_input_dim=n_in if other else None, fit_critic="MLP")
    if critic == "mlp":
        client = MlpShape(n_in, shape.layers, shape.qnets)
        return CriticMatch(
            client="SB3 MlpPolicy",
            structure=f"plain MLP, {shape.layers} hidden layer{'s' * (shape.layers > 1)} of "
                      f"width {w} x {shape.qnets} Q-net{'s' * (shape.qnets > 1)}, scalar head "
                      f"(net_arch qf {[w] * shape.layers}, n_critics {shape.qnets})",
            params_client=client.params(w), **common,
            missing=("nothing: the fit's critic as its params(width) reads" if not other else
                     f"its input layer differs: the fit's runs took {shape.input_dim} inputs, "
                     f"the env {n_in}") + "; the fit does not record the runs' activation_fn "
                    "or actor: SB3's defaults here (ReLU, pi 256-256); set your runs' own in "
                    "policy_kwargs")
    if critic == "bronet":
        bronet_shape(fit)  # raises: the fit's critic is an MLP, not a BroNet
    if critic == "cleanrl":
        c = CLEANRL_WIDTH
        return CriticMatch(
            client="CleanRL sac_continuous_action.py",
            structure=f"hard-coded {c}-{c} ReLU MLP x {N_QNETS} Q-nets, scalar head (no flag "
                      "sets its width)",
            params_client=N_QNETS * MlpShape(n_in, 2, 1).per_qnet(c), **common,
            missing=f"no flag sets the recommended width {w}")
    raise ExportError(f"critic must be one of {', '.join(CRITICS)}, got {critic!r}")
