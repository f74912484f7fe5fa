"""Tests for :mod:`complementarity.metric`: the Complementarity formulas, weighting and top-k."""

from __future__ import annotations

import math
import random

import pytest

from complementarity.errors import UserError
from complementarity.metric import METRICS, complementarity, register_metric, weighted_mean
from complementarity.selection import top_k

# ------------------------------------------------------------------------------------------------
# Formulas
# ------------------------------------------------------------------------------------------------


def test_relative_on_fixed_numbers() -> None:
    assert complementarity(2.0, 1.5, "relative") == pytest.approx(0.25)
    assert complementarity(2.0, 1.5) == pytest.approx(0.25)  # relative is the default
    assert complementarity(4.0, 0.0, "relative") == pytest.approx(1.0)
    assert complementarity(3.0, 3.0, "relative") == 0.0


def test_absolute_on_fixed_numbers() -> None:
    assert complementarity(2.0, 1.5, "absolute") == pytest.approx(0.5)
    assert complementarity(0.0, 0.25, "absolute") == pytest.approx(-0.25)  # base 0 is fine for absolute


def test_tuned_worse_is_negative() -> None:
    assert complementarity(2.0, 2.5, "relative") == pytest.approx(-0.25)
    assert complementarity(2.0, 2.5, "absolute") == pytest.approx(-0.5)


@pytest.mark.parametrize("base", [0.0, -1.0, math.inf, math.nan])
def test_relative_needs_positive_finite_base(base: float) -> None:
    with pytest.raises(UserError, match="absolute") as info:
        complementarity(base, 1.0, "relative")
    assert repr(base) in str(info.value)


def test_unknown_metric_names_known_metrics() -> None:
    with pytest.raises(UserError) as info:
        complementarity(2.0, 1.0, "ratio")
    msg = str(info.value)
    assert "'ratio'" in msg
    assert "absolute" in msg and "relative" in msg


def test_register_metric_is_usable() -> None:
    assert "halved" not in METRICS
    try:

        @register_metric("halved")
        def halved(base: float, tuned: float) -> float:
            return (base - tuned) / 2

        assert METRICS["halved"] is halved
        assert complementarity(3.0, 1.0, "halved") == pytest.approx(1.0)
        with pytest.raises(UserError, match="halved"):  # now listed among the known metrics
            complementarity(3.0, 1.0, "nope")
    finally:
        METRICS.pop("halved", None)
    assert "halved" not in METRICS
    with pytest.raises(UserError):
        complementarity(3.0, 1.0, "halved")


# ------------------------------------------------------------------------------------------------
# Weighted mean
# ------------------------------------------------------------------------------------------------


def test_weighted_mean_equal_weights() -> None:
    scores = {"a": 0.1, "b": 0.3, "c": -0.1}
    assert weighted_mean(scores) == pytest.approx(0.1)
    assert weighted_mean(scores, {}) == pytest.approx(0.1)
    assert weighted_mean(scores, None) == pytest.approx(0.1)


def test_weighted_mean_with_weights() -> None:
    scores = {"a": 1.0, "b": 0.0}
    assert weighted_mean(scores, {"a": 3.0, "b": 1.0}) == pytest.approx(0.75)
    assert weighted_mean(scores, {"a": 1.0, "b": 1.0}) == pytest.approx(0.5)


def test_weighted_mean_missing_domain_weighs_zero() -> None:
    assert weighted_mean({"a": 1.0, "b": 5.0}, {"a": 2.0}) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------
# Top-k
# ------------------------------------------------------------------------------------------------


def test_top_k_best_first() -> None:
    means = {"s1": 0.1, "s2": 0.5, "s3": -0.2, "s4": 0.3}
    assert top_k(means, 1) == ["s2"]
    assert top_k(means, 2) == ["s2", "s4"]
    assert top_k(means, 4) == ["s2", "s4", "s1", "s3"]


def test_top_k_ties_go_to_smaller_id_regardless_of_order() -> None:
    items = [("shard03", 0.2), ("shard01", 0.2), ("shard02", 0.2), ("shard04", 0.5), ("shard05", 0.1)]
    expected2 = ["shard04", "shard01"]
    expected4 = ["shard04", "shard01", "shard02", "shard03"]
    rng = random.Random(7)
    orders = set()
    for _ in range(30):
        rng.shuffle(items)
        orders.add(tuple(items))
        means = dict(items)
        assert top_k(means, 2) == expected2, f"input order {list(means)}"
        assert top_k(means, 4) == expected4, f"input order {list(means)}"
    assert len(orders) > 5  # really tried several insertion orders


@pytest.mark.parametrize("k", [0, -1, 4])
def test_top_k_out_of_range(k: int) -> None:
    with pytest.raises(UserError) as info:
        top_k({"a": 1.0, "b": 2.0, "c": 3.0}, k)
    msg = str(info.value)
    assert f"k={k}" in msg and "N=3" in msg
