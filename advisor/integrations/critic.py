"""The critic a fit describes, and what each RL codebase can build of it.

The BroNet fits describe the double critic of calibration/learner/nets.py. Per Q-net:
Dense(in -> w) -> LayerNorm -> ReLU, `blocks` residual blocks
[Dense -> LayerNorm -> ReLU -> Dense -> LayerNorm] + skip, and a Dense head with `quantiles`
outputs. Both Q-nets together (the fit's `architecture.coefficients`):

    params(w) = 4 blocks w^2 + 2 (in + 3 + 6 blocks + quantiles) w + 2 quantiles

so blocks = c0 / 4, quantiles = c2 / 2 and in = c1 / 2 - 3 - 6 blocks - quantiles (input 70,
2 blocks, 100 quantiles: 8w^2 + 370w + 200). Stable-Baselines3's SAC learns a scalar Q, so no
client here builds the quantile head: `CriticMatch` says exactly how many parameters are missing.

A fit of a tidy CSV's own widths describes the runs' critic by its params(width), and by what
the CSV's `critic` column says it is (`advisor tidy` of rl-zoo runs writes it; the fit's
architecture description records it, calibration.build checks it): `mlp`, a plain MLP of
`qnets` Q-nets of Linear(in -> w), `layers - 1` Linear(w -> w) and Linear(w -> 1),

    params(w) = qnets (layers - 1) w^2 + qnets (in + layers + 1) w + qnets

read as that MLP (`MlpShape`), which SB3's MlpPolicy builds (net_arch qf [w] * layers,
n_critics qnets); or `bronet`, SB3 BroNetSACPolicy's BroNet, the polynomial above with one
quantile. The exports then give the runs' own critic at the recommended width. The polynomial
alone does not say which: a BroNet with a scalar head has an MLP's form (4w^2 + 28w + 2 is one
residual block on 4 inputs, and 3 hidden layers on 10).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from advisor.errors import ExportError, shown

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


#: Most Q-nets and hidden layers an MLP reading accepts, and most inputs (an image, flattened).
MLP_MOST_QNETS = 100
MLP_MOST_LAYERS = 100
MLP_MOST_INPUT = 10**7


def _whole(v: float, least: int, most: int) -> int | None:
    """round(v) where v is that whole number (to float precision) within least-most, else None."""
    r = round(v)
    return r if abs(v - r) < 1e-9 * max(1.0, abs(v)) and least <= r <= most else None


def mlp_of(coefficients) -> MlpShape | None:
    """The plain MLP whose params(width) the coefficients are (highest power first; see the
    module docstring), or None where they are no such MLP's."""
    c = [float(v) for v in coefficients]
    if not 2 <= len(c) <= 3:
        return None
    c = [0.0] * (3 - len(c)) + c
    qnets = _whole(c[2], 1, MLP_MOST_QNETS)
    if qnets is None:
        return None
    layers = _whole(c[0] / qnets + 1, 1, MLP_MOST_LAYERS)
    inputs = _whole(c[1] / qnets - c[0] / qnets - 2, 1, MLP_MOST_INPUT)
    if layers is None or inputs is None:
        return None
    return MlpShape(input_dim=inputs, layers=layers, qnets=qnets)


def bronet_of(coefficients, scalar: bool = True) -> BroNetShape | None:
    """The BroNet double critic whose params(width) the coefficients are (the module
    docstring), or None; `scalar`: only one with a scalar head (SB3 BroNetSACPolicy's)."""
    c = [float(v) for v in coefficients]
    if len(c) != 3:
        return None
    blocks = _whole(c[0] / 4, 1, 10**6)
    quantiles = _whole(c[2] / 2, 1, 1 if scalar else 10**6)
    if blocks is None or quantiles is None:
        return None
    inputs = _whole(c[1] / 2 - 3 - 6 * blocks - quantiles, 1, 10**9)
    return None if inputs is None else BroNetShape(inputs, blocks, quantiles)


def mlp_shape(fit: Fit) -> MlpShape | None:
    """The plain MLP of a fit whose CSV's critic column said `mlp` (calibration.build checked
    that its params(width) is one: see the module docstring), or None for every other fit."""
    from advisor.fitfile import CSV_MLP  # here: `advisor --help` loads no numpy

    arch = fit.model.architecture
    return mlp_of(arch.coefficients) if arch.description.startswith(CSV_MLP) else None


def default_critic(fit: Fit) -> str:
    """The critic an export builds when none is named: the fit's own, "mlp" for a fit of MLP
    runs (`mlp_shape`), "bronet" for every other."""
    return "mlp" if mlp_shape(fit) is not None else "bronet"


def resolve_critic(rec: Recommendation, critic: str | None, fit: Fit | str | None = None
                   ) -> str:
    """`critic`, or where None the critic of the fit behind `rec` (default_critic)."""
    return default_critic(fit_of(rec, fit)) if critic is None else critic


def poly_text(c) -> str:
    """params(width) as text: 2w^2 + 14w + 2."""
    c = [float(v) for v in c]
    terms = [f"{v:g}w^{len(c) - 1 - i}" if len(c) - 1 - i > 1 else
             (f"{v:g}w" if len(c) - 1 - i == 1 else f"{v:g}") for i, v in enumerate(c)]
    return " + ".join(terms).replace("+ -", "- ")


def bronet_shape(fit: Fit) -> BroNetShape:
    """The BroNet a fit describes, read from its architecture; ExportError if it is no BroNet
    (SimbaV2 fits: hyperspherical-normalised blocks no client here can build)."""
    from advisor.fitfile import CSV_BRONET, CSV_CRITIC, CSV_MLP  # not at import: no numpy

    arch = fit.model.architecture
    c = arch.coefficients
    if "bronet" in arch.description.lower():
        shape = bronet_of(c, scalar=arch.description.startswith(CSV_BRONET))
        if shape is not None:
            return shape
    mlp = mlp_shape(fit)
    if mlp is not None:
        raise ExportError(
            f"{fit.id}'s critic is a {mlp.describe()} (params(width) = {poly_text(c)}, its "
            "runs'), not a BroNet: the mlp critic (--critic mlp, SB3's MlpPolicy) builds it")
    if arch.description.startswith((CSV_MLP, CSV_BRONET)):  # only a hand-edited file
        what = (f"an MLP of at most {MLP_MOST_QNETS} Q-nets and {MLP_MOST_LAYERS} hidden layers"
                if arch.description.startswith(CSV_MLP) else
                "a BroNet of 2 Q-nets, 1 or more residual blocks and a scalar head")
        raise ExportError(
            f"{fit.id}'s architecture says {arch.description.split(':')[0]}, but its params(width) "
            f"= {poly_text(c)} is no such critic the exports build ({what}): remake the fit with "
            "advisor fit")
    if arch.description.startswith(CSV_CRITIC):
        raise ExportError(
            f"{fit.id} counts the critic of the runs it was fitted on (params(width) = "
            f"{poly_text(c)}, fitted to its CSV's width and params), and its CSV did not say "
            "what critic that is, so no export can build it: give the CSV a critic column (mlp "
            "or bronet; advisor tidy writes one) and fit again, or give that critic the "
            "recommended width yourself (SB3: policy_kwargs net_arch's qf layers), with the rest "
            "from json/yaml or the CleanRL flags")
    raise ExportError(
        f"{fit.id} describes a critic that is not a BroNet ({arch.description}: params(width) = "
        f"{poly_text(c)}), which Stable-Baselines3 and rl-zoo cannot build; use a bro/ fit, or the "
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
        per_qnet = MlpShape(n_in, layers, 1).per_qnet(w)
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
        return _cleanrl_match(n_in, width=w, input_dim=shape.input_dim, params_fit=params_fit,
                              client_input_dim=n_in if other else None)
    raise ExportError(f"critic must be one of {', '.join(CRITICS)} or cleanrl, got "
                      f"{shown(critic)}")


def _cleanrl_match(n_in: int, **common) -> CriticMatch:
    """CleanRL's fixed critic on `n_in` inputs against the fit's (`common`: CriticMatch's
    width, input_dim, params_fit, client_input_dim and fit_critic)."""
    c = CLEANRL_WIDTH
    return CriticMatch(
        client="CleanRL sac_continuous_action.py",
        structure=f"hard-coded {c}-{c} ReLU MLP x {N_QNETS} Q-nets, scalar head (no flag sets "
                  "its width)",
        params_client=N_QNETS * MlpShape(n_in, 2, 1).per_qnet(c), **common,
        missing=f"no flag sets the recommended width {common['width']}")


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
        return _cleanrl_match(n_in, **common)
    raise ExportError(f"critic must be one of {', '.join(CRITICS)} or cleanrl, got "
                      f"{shown(critic)}")
