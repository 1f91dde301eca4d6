"""Critic parameter count as a polynomial in width, per architecture (fit files store these).

params(width) = sum_i coefficients[i] * width^(degree - i), both Q-nets of the double critic.
"""

from __future__ import annotations

import numpy as np

from advisor.fitfile import Architecture
from calibration.archives import SIMBAV2_PARAMS


def bronet_params_coefficients(input_dim: int, blocks: int = 2, quantiles: int = 100
                               ) -> list[float]:
    """params(width) of the double BroNet critic as [w^2, w, 1] coefficients.

    Per Q-net: Dense(in->w) + LN, `blocks` residual blocks of two Dense(w->w) + two LN, and a
    Dense(w->quantiles) head: 2*blocks w^2 + (in + 1 + 2 + 6*blocks + quantiles) w + quantiles.
    For input 70 this is 8w^2 + 370w + 200 (reference.md).
    """
    per_w2 = 2 * blocks
    per_w = input_dim + 1 + 2 + 6 * blocks + quantiles
    return [2.0 * per_w2, 2.0 * per_w, 2.0 * quantiles]


def bronet_params(width: int, input_dim: int, blocks: int = 2, quantiles: int = 100) -> int:
    """Exact critic parameter count of the double BroNet critic at `width`."""
    c = bronet_params_coefficients(input_dim, blocks, quantiles)
    return int(round(c[0] * width**2 + c[1] * width + c[2]))


def simbav2_coefficients() -> list[float]:
    """The SimbaV2 counts of reference.md are exactly a quadratic in width: its coefficients,
    rounded to integers."""
    widths = np.array(sorted(SIMBAV2_PARAMS), dtype=float)
    counts = np.array([SIMBAV2_PARAMS[w] for w in sorted(SIMBAV2_PARAMS)], dtype=float)
    coef = np.polyfit(widths, counts, 2)
    return [float(round(c)) for c in coef]


def bronet_architecture(input_dim: int, quantiles: int = 100, width_multiple: int = 64,
                        whose: str = "") -> Architecture:
    """The fit-file architecture of a double BroNet critic with 2 residual blocks."""
    who = f" ({whose})" if whose else ""
    return Architecture(
        description=f"BroNet double critic{who}, 2 residual blocks, {quantiles} quantiles, "
                    f"input {input_dim}",
        coefficients=bronet_params_coefficients(input_dim, quantiles=quantiles),
        width_multiple=width_multiple)
