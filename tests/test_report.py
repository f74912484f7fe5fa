"""Statistics, the results table, the Markdown report and the figures (no model needed)."""

from __future__ import annotations

import math

import matplotlib.image as mpimg
import pandas as pd
import pytest

from complementarity.report import MEAN, comparisons, evaluation_table, figures, markdown_report
from complementarity.selection import random_k
from complementarity.stats import paired_bootstrap, stratified_paired_bootstrap, wilson


@pytest.mark.parametrize(
    ("correct", "n", "low", "high"),
    [
        (8, 10, 0.4901625, 0.9433178),
        (0, 200, 0.0, 0.0188453),
        (3, 200, 0.0051142, 0.0431657),
        (50, 100, 0.4038315, 0.5961685),
    ],
)
def test_wilson_matches_reference_values(correct, n, low, high):
    got = wilson(correct, n, 0.95)
    assert got == pytest.approx((low, high), abs=1e-6)


def test_wilson_is_wider_at_higher_confidence_and_handles_n_zero():
    a, b = wilson(30, 50, 0.9), wilson(30, 50, 0.99)
    assert b[0] < a[0] < 0.6 < a[1] < b[1]
    assert wilson(0, 0) == (0.0, 1.0)


def test_paired_bootstrap():
    a = [1.0] * 60 + [0.0] * 40
    b = [1.0] * 40 + [0.0] * 60
    r = paired_bootstrap(a, b, resamples=2000, seed=1)
    assert r["diff"] == pytest.approx(0.2) and r["low"] > 0 and r["high"] < 0.4 and r["p_better"] == 1.0
    tie = paired_bootstrap([1.0, 0.0], [1.0, 0.0])
    assert tie["diff"] == 0 and math.isnan(tie["p_better"])
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap([1.0], [1.0, 0.0])


def test_stratified_paired_bootstrap_weighs_domains_equally():
    # Domain 1 (10 items): +1 on every item; domain 2 (1000 items): no difference. Mean of domains: +0.5
    # (pooling the items would give ~0.01).
    r = stratified_paired_bootstrap([([1.0] * 10, [0.0] * 10), ([1.0] * 1000, [1.0] * 1000)], resamples=500)
    assert r["diff"] == pytest.approx(0.5) and r["low"] == r["high"] == pytest.approx(0.5) and r["n"] == 1010
    mixed = stratified_paired_bootstrap(
        [([1.0] * 60 + [0.0] * 40, [1.0] * 40 + [0.0] * 60), ([0.0] * 50, [1.0] * 10 + [0.0] * 40)], seed=1
    )
    assert mixed["diff"] == pytest.approx((0.2 - 0.2) / 2) and mixed["low"] < 0 < mixed["high"]
    with pytest.raises(ValueError, match="non-empty groups"):
        stratified_paired_bootstrap([([1.0], [1.0, 0.0])])


def test_random_k_is_seeded_and_order_free():
    shards = [f"s{i}" for i in range(10)]
    assert random_k(shards, 3, 7) == random_k(list(reversed(shards)), 3, 7)
    assert len(set(random_k(shards, 3, 7))) == 3
    assert any(random_k(shards, 3, seed) != random_k(shards, 3, 7) for seed in range(8))


def _result(correct: list[int]) -> dict:
    return {
        "evaluator": "exact_match",
        "n": len(correct),
        "correct": sum(correct),
        "score": sum(correct) / len(correct),
        "per_item": [{"id": str(i), "correct": bool(c)} for i, c in enumerate(correct)],
    }


@pytest.fixture
def evals() -> dict:
    return {
        "base": {"a": _result([0] * 20), "b": _result([0] * 20)},
        "final": {"a": _result([1] * 15 + [0] * 5), "b": _result([1] * 2 + [0] * 18)},
        "all_data": {"a": _result([1] * 10 + [0] * 10), "b": _result([1] * 2 + [0] * 18)},
        "random_k_seed1": {"a": _result([1] * 3 + [0] * 17), "b": _result([1] * 2 + [0] * 18)},
        "random_k_seed2": {"a": _result([1] * 5 + [0] * 15), "b": _result([1] * 2 + [0] * 18)},
    }


def test_evaluation_table(evals):
    records = {"final": 200, "all_data": 1000, "random_k_seed1": 200, "random_k_seed2": 200}
    t = evaluation_table(evals, records, 1000, 0.95)
    assert len(t) == 10 and set(t["model"]) == set(evals)
    assert (t["ci_low"] <= t["score"]).all() and (t["score"] <= t["ci_high"]).all()
    row = t[(t["model"] == "final") & (t["domain"] == "a")].iloc[0]
    assert row["score"] == 0.75 and row["n"] == 20 and row["train_fraction"] == 0.2
    assert t[t["model"] == "base"]["train_fraction"].eq(0).all()


def test_report_compares_the_selected_model_with_the_baselines(evals, tmp_path):
    t = evaluation_table(
        evals, {"final": 200, "all_data": 1000, "random_k_seed1": 200, "random_k_seed2": 200}, 1000, 0.95
    )
    comps = comparisons(evals, confidence=0.95, resamples=1000)
    by = {(c["domain"], c["against"]): c for c in comps}
    assert by[("a", "random_k")]["diff"] == pytest.approx(0.75 - 0.2) and by[("a", "random_k")]["low"] > 0
    assert by[("b", "all_data")]["diff"] == 0
    # The mean over domains: a +55 points against random k, b 0 -> +27.5, and its interval excludes 0.
    mean_rk = by[(MEAN, "random_k")]
    assert mean_rk["diff"] == pytest.approx((0.75 - 0.2) / 2) and mean_rk["low"] > 0 and mean_rk["n"] == 40
    assert by[(MEAN, "all_data")]["diff"] == pytest.approx(0.25 / 2)
    comp = pd.DataFrame({"shard": ["s1", "s2", "s3"], "a": [0.1, 0.05, -0.01], "b": [0.2, 0.0, 0.01]})
    comp["mean"] = comp[["a", "b"]].mean(axis=1)
    selection = {"k": 2, "metric": "relative", "selected": ["s1", "s2"]}
    text = markdown_report(t, comps, comp, selection, confidence=0.95, tiny=True, untested=["c"])
    assert "Embedded tiny model" in text and "**s1**, **s2**" in text and "| s1 ✔ |" in text
    assert "| a | 20 | 0.0 [0.0, 16.1] | 75.0 [53.1, 88.8] | 20.0 ± 7.1 | 50.0 [29.9, 70.1] |" in text
    assert "Against **random k**: better on 1 of 2 domains (a)" in text
    assert f"| **{MEAN}** | 40 | 0.0 | 42.5 | 15.0 ± 3.5 | 30.0 |" in text
    assert f"On the {MEAN}: +27.5 points [" in text and "], better." in text
    assert f"| {MEAN} | random k | +27.5 |" in text
    # Each random-k draw on its own, on the mean over domains: +30 (seed 1) and +25 points (seed 2).
    assert by[(MEAN, "random_k_seed1")]["diff"] == pytest.approx((0.75 - 0.15) / 2)
    assert by[(MEAN, "random_k_seed2")]["diff"] == pytest.approx((0.75 - 0.25) / 2)
    assert f"| {MEAN} | random k, seed 2 | +25.0 |" in text
    assert f"Against **each random-k draw** on the {MEAN}: better than 2 of 2, worse than 0" in text
    assert "(differences +30.0, +25.0 points)" in text
    assert "Not evaluated (no test data): c." in text
    written = figures(t, comp, selection, tmp_path, confidence=0.95)
    assert {p.name for p in written} == {
        "complementarity_heatmap.png", "complementarity_heatmap.svg", "accuracy.png", "accuracy.svg",
    }  # fmt: skip
    img = mpimg.imread(tmp_path / "accuracy.png")
    assert img.shape[0] > 300 and img.shape[1] > 500
    # With shard models evaluated, the scatter appears too.
    evals_shards = {**evals, "shard-s1": evals["final"], "shard-s2": evals["all_data"], "shard-s3": evals["base"]}
    t2 = evaluation_table(evals_shards, {}, 1000, 0.95)
    names = {p.name for p in figures(t2, comp, selection, tmp_path / "s", confidence=0.95)}
    assert "complementarity_vs_accuracy.png" in names


def test_report_compares_retrain_with_merge(evals):
    """evaluation.final_methods [retrain, merge]: the merged model gets its column and its paired comparison."""
    evals = {**evals, "final_merge": {"a": _result([1] * 12 + [0] * 8), "b": _result([1] * 2 + [0] * 18)}}
    t = evaluation_table(evals, {"final": 200, "final_merge": 200, "all_data": 1000}, 1000, 0.95)
    comps = comparisons(evals, confidence=0.95, resamples=1000)
    by = {(c["domain"], c["against"]): c for c in comps}
    assert by[("a", "final_merge")]["diff"] == pytest.approx(0.75 - 0.6)
    comp = pd.DataFrame({"shard": ["s1", "s2"], "a": [0.1, 0.05], "b": [0.2, 0.0]})
    comp["mean"] = comp[["a", "b"]].mean(axis=1)
    selection = {"k": 1, "metric": "relative", "selected": ["s1"]}
    text = markdown_report(t, comps, comp, selection, confidence=0.95, tiny=False, untested=[], final_method="retrain")
    assert "| domain | n | base model | selected (Complementarity) | selected, adapters merged | random k" in text
    assert "| a | 20 | 0.0 [0.0, 16.1] | 75.0 [53.1, 88.8] | 60.0 [38.7, 78.1] | 20.0 ± 7.1 |" in text
    assert "| a | selected, adapters merged | +15.0 |" in text
    assert "Against **selected, adapters merged**:" in text and "`final.method: retrain`" in text
