import numpy as np
import pytest

from advisor import laws, optimize

COEF = (2.0e5, 3.0, 0.8, 2.0e6, 0.6)  # d_min, a, alpha, b, beta
K = 10 * 256


def test_data_to_target_matches_equation_7_1():
    d = laws.data_to_target(2.0, 1e6, *COEF)
    assert d == pytest.approx(2e5 + (3 / 2) ** 0.8 + (2e6 / 1e6) ** 0.6)


def test_batch_size_decreases_in_utd_and_saturates_in_params():
    b = laws.batch_size([1, 2, 4], 1e6, 1680.64, 0.30, 6.01e7, 1.12)
    assert np.all(np.diff(b) < 0)
    big = laws.batch_size(1.0, 1e30, 1680.64, 0.30, 6.01e7, 1.12)
    assert big == pytest.approx(1680.64)


def test_batch_size_handles_huge_published_coefficients():
    b = laws.batch_size(1.0, [1e5, 1e7], 1458.10, 0.27, 1.33e74, 12.71)
    assert np.all(np.isfinite(b)) and b[0] < b[1] <= 1458.10


def test_compute_is_k_utd_params_data():
    assert laws.compute(2, 1e6, 3e5) == pytest.approx(10 * 256 * 2 * 1e6 * 3e5)


def test_compute_optimal_point_lies_on_the_line_and_reaches_data():
    d, a, alpha, b, beta = COEF
    utd, params = laws.compute_optimal_point(5e5, *COEF)
    assert alpha * (a / utd) ** alpha == pytest.approx(beta * (b / params) ** beta)
    assert laws.data_to_target(utd, params, *COEF) == pytest.approx(5e5)


def test_point_on_line_has_least_utd_times_params_for_its_data():
    utd0, params0 = laws.compute_optimal_point(5e5, *COEF)
    # Walk along the iso-data curve: any other split of the excess data costs more.
    d, a, alpha, b, beta = COEF
    for share in np.linspace(0.05, 0.95, 19):
        x = (5e5 - d) * share
        utd = a * x ** (-1 / alpha)
        params = b * ((5e5 - d) - x) ** (-1 / beta)
        assert utd * params >= utd0 * params0 * (1 - 1e-9)


def test_optimizer_without_box_lands_on_the_compute_optimal_line():
    p = optimize.min_compute_within_data(5e5, COEF, K)
    utd, params = laws.compute_optimal_point(p.data, *COEF)
    assert p.utd == pytest.approx(utd, rel=1e-6) and p.params == pytest.approx(params, rel=1e-6)


def test_box_projection_keeps_the_data_and_stays_inside():
    box = optimize.Box(0.5, 4.0, 1e5, 1e7)
    for data in (2.2e5, 3e5, 1e6):
        p = optimize.min_compute_within_data(data, COEF, K, box)
        if p is None:
            continue
        assert box.utd_low * 0.999 <= p.utd <= box.utd_high * 1.001
        assert box.params_low * 0.999 <= p.params <= box.params_high * 1.001
        assert laws.data_to_target(p.utd, p.params, *COEF) <= data * (1 + 1e-9)


def test_unreachable_data_gives_nan():
    utd, params = laws.compute_optimal_point(1e5, *COEF)
    assert np.isnan(utd) and np.isnan(params)


REAL = (1.0e5, 3.6e6, 0.8, 2.2e14, 0.6)  # optimum near utd 1.5, params 4e5 at 4e5 env steps


@pytest.mark.parametrize("box, where", [
    (optimize.Box(0.5, 8.0, 1e5, 1e7), "inside"),       # the line's point is in the box
    (optimize.Box(2.0, 8.0, 1e4, 1e7), "utd edge"),     # utd clipped at 2, params free
    (optimize.Box(0.5, 8.0, 1e6, 1e7), "params edge"),  # params clipped at 1e6, utd free
    (optimize.Box(2.0, 8.0, 1e6, 1e7), "corner"),       # both clipped: data budget unreachable?
])
def test_box_projection_inside_on_an_edge_and_at_a_corner(box, where):
    free = optimize.min_compute_within_data(4e5, REAL, K)
    p = optimize.min_compute_within_data(4e5, REAL, K, box)
    assert p is not None
    on_utd, on_params = box.on_edge(p.utd, p.params)
    assert (on_utd, on_params) == {"inside": (False, False), "utd edge": (True, False),
                                   "params edge": (False, True), "corner": (True, True)}[where]
    assert box.utd_low * 0.999 <= p.utd <= box.utd_high * 1.001
    assert box.params_low * 0.999 <= p.params <= box.params_high * 1.001
    assert laws.data_to_target(p.utd, p.params, *REAL) <= 4e5 * (1 + 1e-9)
    if where == "inside":
        assert p.utd == pytest.approx(free.utd, rel=1e-6)
    else:  # the box costs compute, and a brute-force search over the box finds no cheaper point
        assert p.compute >= free.compute * (1 - 1e-9)
        s, n = np.meshgrid(np.geomspace(box.utd_low, box.utd_high, 800),
                           np.geomspace(box.params_low, box.params_high, 800), indexing="ij")
        d = laws.data_to_target(s, n, *REAL)
        brute = (K * s * n * d)[d <= 4e5]
        assert p.compute <= brute.min() * (1 + 1e-6)
