"""The study's statistics against SciPy on fixed inputs, and their edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp

from complementarity.stats import bootstrap_correlation, linear_fit, pearson, rankdata, spearman

RNG = np.random.default_rng(7)
X = RNG.normal(size=40)
Y = 0.6 * X + RNG.normal(size=40)
TIED_X = [1, 2, 2, 3, 3, 3, 4, 5, 5, 6]
TIED_Y = [0.0, 0.0, 0.1, 0.1, 0.1, 0.3, 0.2, 0.5, 0.5, 0.4]


@pytest.mark.parametrize("values", [X, TIED_X, TIED_Y, [3.0, 1.0, 2.0], [5, 5, 5, 5], [0.1, 0.1 + 1e-12]])
def test_rankdata_matches_scipy_average_ranks(values):
    assert np.array_equal(rankdata(values), sp.rankdata(values, method="average"))


@pytest.mark.parametrize(("x", "y"), [(X, Y), (TIED_X, TIED_Y), (X[:5], -(X[:5] ** 3)), ([1, 2, 3], [3, 1, 2])])
def test_pearson_and_spearman_match_scipy(x, y):
    assert pearson(x, y) == pytest.approx(sp.pearsonr(x, y).statistic, abs=1e-12)
    assert spearman(x, y) == pytest.approx(sp.spearmanr(x, y).statistic, abs=1e-12)


def test_known_values():
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    # Monotone but not linear: Spearman is exactly 1, Pearson is not.
    x = [1, 2, 3, 4, 5]
    y = [1, 4, 9, 16, 100]
    assert spearman(x, y) == 1.0 and pearson(x, y) < 0.95


@pytest.mark.parametrize(("x", "y"), [([1, 1, 1], [1, 2, 3]), ([1, 2, 3], [0.0, 0.0, 0.0]), ([1.0], [2.0]), ([], [])])
def test_undefined_correlation_is_nan_not_zero(x, y):
    # SciPy warns and returns nan for a constant input; so do we (silently), and never a number.
    assert math.isnan(pearson(x, y)) and math.isnan(spearman(x, y))


def test_unpaired_input_is_an_error():
    with pytest.raises(ValueError, match="paired values: 3 != 2"):
        pearson([1, 2, 3], [1, 2])


def test_bootstrap_ci_matches_scipy_percentile_bootstrap_closely():
    ours = bootstrap_correlation(X, Y, method="pearson", resamples=4000, seed=1)
    ref = sp.bootstrap(
        (X, Y),
        lambda a, b: sp.pearsonr(a, b).statistic,
        paired=True,
        vectorized=False,
        n_resamples=4000,
        method="percentile",
        random_state=np.random.default_rng(2),
    ).confidence_interval
    assert ours["r"] == pytest.approx(sp.pearsonr(X, Y).statistic)
    assert ours["n"] == 40 and ours["undefined"] == 0
    # Two independent Monte Carlo runs of the same percentile bootstrap: equal up to resampling noise.
    assert ours["low"] == pytest.approx(ref.low, abs=0.03) and ours["high"] == pytest.approx(ref.high, abs=0.03)
    assert ours["low"] < ours["r"] < ours["high"]


def test_bootstrap_counts_resamples_with_a_constant_variable():
    # Mostly-constant y: many resamples contain only zeros, where the correlation is undefined.
    y = [0.0] * 9 + [1.0]
    out = bootstrap_correlation(list(range(10)), y, method="spearman", resamples=500, seed=0)
    assert 0 < out["undefined"] < 500 and out["low"] <= out["high"]
    none = bootstrap_correlation([1, 2, 3], [0, 0, 0], resamples=100)
    assert math.isnan(none["r"]) and math.isnan(none["low"]) and none["undefined"] == 100


def test_bootstrap_is_reproducible_with_its_seed():
    a = bootstrap_correlation(X, Y, method="spearman", resamples=300, seed=3)
    b = bootstrap_correlation(X, Y, method="spearman", resamples=300, seed=3)
    c = bootstrap_correlation(X, Y, method="spearman", resamples=300, seed=4)
    assert a == b and (a["low"], a["high"]) != (c["low"], c["high"])


def test_linear_fit_matches_scipy_linregress():
    fit = sp.linregress(X, Y)
    slope, intercept = linear_fit(X, Y)
    assert slope == pytest.approx(fit.slope) and intercept == pytest.approx(fit.intercept)
    assert all(math.isnan(v) for v in linear_fit([2, 2, 2], [1, 2, 3]))


def test_row_wise_correlations_match_the_one_at_a_time_versions():
    from complementarity.stats import pearson_rows, rank_rows, spearman_rows

    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(300, 9)).astype(float)  # many ties, some constant rows
    y = rng.integers(0, 3, size=(300, 9)).astype(float)
    x[0] = 2.0
    assert np.array_equal(rank_rows(x), sp.rankdata(x, axis=1, method="average"))
    for rows, one in ((pearson_rows, pearson), (spearman_rows, spearman)):
        got = rows(x, y)
        want = np.array([one(a, b) for a, b in zip(x, y, strict=True)])
        assert np.array_equal(np.isnan(got), np.isnan(want)) and np.allclose(got[~np.isnan(got)], want[~np.isnan(want)])
    assert math.isnan(spearman_rows(x, y)[0])
