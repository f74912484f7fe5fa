"""Unit tests of the study's pieces (complementarity.study) on constructed inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from complementarity.errors import UserError
from complementarity.plan import study_models
from complementarity.records import Example
from complementarity.study import (
    compare_predictors,
    correct_matrix,
    correlation_points,
    correlation_table,
    seed_selection_table,
    study_datasets,
)
from complementarity.tables import complementarity_table


def test_study_models_are_singles_then_pairs():
    models = study_models(["a", "b", "c"])
    assert models == {"a": ["a"], "b": ["b"], "c": ["c"], "a+b": ["a", "b"], "a+c": ["a", "c"], "b+c": ["b", "c"]}
    assert study_models(["a", "b", "c"], pairs=False) == {"a": ["a"], "b": ["b"], "c": ["c"]}
    assert len(study_models([f"d{i}" for i in range(4)])) == 4 + 6  # p + p(p-1)/2, the paper's 10


def _train(sizes):
    return {
        d: [Example(prompt=f"{d} {i}", response=str(i), id=f"{d}-{i}", domain=d) for i in range(n)]
        for d, n in sizes.items()
    }


def test_every_study_model_gets_the_same_number_of_examples():
    train = _train({"a": 50, "b": 30, "c": 40})
    models = study_models(list(train))
    data, n = study_datasets(train, models, examples=None, seed=0)
    assert n == 30  # default: the smallest domain
    assert {m: len(exs) for m, exs in data.items()} == dict.fromkeys(models, 30)
    assert {ex.domain for ex in data["b"]} == {"b"}
    pair = data["a+c"]
    assert sum(ex.domain == "a" for ex in pair) == 15 and sum(ex.domain == "c" for ex in pair) == 15
    # A pair's half of a domain is inside that domain's single-domain set (nested draws).
    assert {ex.id for ex in pair if ex.domain == "a"} <= {ex.id for ex in data["a"]}
    odd, _ = study_datasets(train, models, examples=25, seed=0)
    assert all(len(exs) == 25 for exs in odd.values())
    again, _ = study_datasets(train, models, examples=25, seed=0)
    other, _ = study_datasets(train, models, examples=25, seed=1)
    assert again == odd and other["a"] != odd["a"]


def test_too_many_examples_per_model_names_the_key_and_the_limit():
    with pytest.raises(UserError, match=r"study.examples_per_model: 45 .* 'b', which has 30 .* at most 30"):
        study_datasets(_train({"a": 50, "b": 30}), {"b": ["b"]}, examples=45, seed=0)


def test_correlation_points_and_table():
    base_loss = {"x": 2.0, "y": 4.0}
    loss = {"m1": {"x": 1.0, "y": 4.0}, "m2": {"x": 1.5, "y": 3.0}, "m1+m2": {"x": 1.2, "y": 3.2}}
    base_score = {"x": 0.10, "y": 0.20}
    score = {"m1": {"x": 0.30, "y": 0.20}, "m2": {"x": 0.20, "y": 0.25}, "m1+m2": {"x": 0.25, "y": 0.24}}
    trained = {"m1": ["x"], "m2": ["y"], "m1+m2": ["x", "y"]}
    points = correlation_points(base_loss, loss, base_score, score, trained, metric="relative")
    assert len(points) == 6
    row = points[(points["model"] == "m1") & (points["domain"] == "x")].iloc[0]
    assert row["complementarity"] == pytest.approx(0.5) and row["delta_score"] == pytest.approx(0.2)
    assert bool(row["in_domain"]) and not bool(
        points[(points["model"] == "m1") & (points["domain"] == "y")].iloc[0]["in_domain"]
    )
    table = correlation_table(points, resamples=200, confidence=0.9, seed=0)
    assert list(table["scope"].unique()) == ["all", "x", "y"]
    overall = table[(table["scope"] == "all") & (table["method"] == "pearson")].iloc[0]
    assert overall["n"] == 6
    assert overall["r"] == pytest.approx(np.corrcoef(points["complementarity"], points["delta_score"])[0, 1])
    per_domain = table[table["scope"] == "x"]
    assert (per_domain["n"] == 3).all()


def _predictor_inputs(n_models=12, n_items=200, seed=0):
    """True accuracies p_i; Complementarity = p_i exactly (a perfect predictor), items drawn from p_i."""
    rng = np.random.default_rng(seed)
    p = np.linspace(0.2, 0.8, n_models)
    correct = {d: (rng.random((n_models, n_items)) < p[:, None]).astype(float) for d in ("x", "y")}
    c_values = np.stack([p, p], axis=1)
    return c_values, correct


def test_a_perfect_predictor_beats_a_tiny_test_validation_set():
    c_values, correct = _predictor_inputs()
    draws, summary = compare_predictors(c_values, correct, tv_size=5, draws=10, resamples=300, confidence=0.95, seed=0)
    assert len(draws) == 3 * 10 and list(summary["scope"]) == ["all", "x", "y"]
    overall = summary.set_index("scope").loc["all"]
    assert overall["rho_complementarity"] > 0.8 and overall["rho_complementarity"] > overall["rho_test_validation"]
    assert overall["diff_low"] > 0 and overall["verdict"] == "Complementarity predicts better"
    assert overall["test_validation_items"] == 10 and overall["remaining_items"] == 390 and overall["n_models"] == 12
    assert overall["c_low"] <= overall["rho_complementarity"] <= overall["c_high"]


def test_a_useless_complementarity_loses_to_a_large_test_validation_set():
    c_values, correct = _predictor_inputs()
    rng = np.random.default_rng(1)
    shuffled = rng.permutation(c_values[:, 0])
    _, summary = compare_predictors(
        np.stack([shuffled, shuffled], axis=1), correct, tv_size=100, draws=10, resamples=300, confidence=0.95, seed=0
    )
    overall = summary.set_index("scope").loc["all"]
    assert overall["diff_high"] < 0 and overall["verdict"] == "the test-validation set predicts better"


def test_constant_accuracy_gives_an_undefined_verdict_not_a_number():
    c_values, _ = _predictor_inputs(n_models=5)
    zeros = {"x": np.zeros((5, 50)), "y": np.zeros((5, 50))}
    draws, summary = compare_predictors(c_values, zeros, tv_size=5, draws=4, resamples=50, confidence=0.95, seed=0)
    overall = summary.set_index("scope").loc["all"]
    assert math.isnan(overall["rho_complementarity"]) and overall["undefined_draws"] == 4
    assert overall["verdict"].startswith("undefined")
    assert draws["complementarity"].isna().all()


def test_correct_matrix_refuses_models_evaluated_on_different_items():
    evals = {
        "a": {"x": {"per_item": [{"id": "1", "correct": True}, {"id": "2", "correct": False}]}},
        "b": {"x": {"per_item": [{"id": "1", "correct": False}, {"id": "3", "correct": False}]}},
    }
    with pytest.raises(UserError, match="'b' was evaluated on other x test items than 'a'"):
        correct_matrix(evals, ["a", "b"], "x")
    evals["b"]["x"]["per_item"][1]["id"] = "2"
    assert correct_matrix(evals, ["a", "b"], "x").tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_seed_selection_table_counts_how_often_each_shard_is_picked():
    base = {"x": {"nll": 2.0}, "y": {"nll": 2.0}}

    def table(losses):
        return complementarity_table(
            base, {s: {"x": {"nll": v}, "y": {"nll": v}} for s, v in losses.items()}, metric="relative"
        )

    # s1 is always best; s2 and s3 swap second place; s4 is always last.
    tables = {
        0: table({"s1": 1.0, "s2": 1.5, "s3": 1.6, "s4": 1.9}),
        1: table({"s1": 1.1, "s2": 1.7, "s3": 1.4, "s4": 1.9}),
        2: table({"s1": 1.0, "s2": 1.5, "s3": 1.6, "s4": 1.8}),
    }
    out, summary = seed_selection_table(tables, k=2)
    by = out.set_index("shard")
    assert by.loc["s1", "selected"] == 3 and by.loc["s2", "selected"] == 2 and by.loc["s3", "selected"] == 1
    assert by.loc["s4", "selected_fraction"] == 0 and by.loc["s1", "mean_rank"] == 1
    means = [(2 - v) / 2 for v in (1.5, 1.7, 1.5)]
    assert by.loc["s2", "sd"] == pytest.approx(np.std(means, ddof=1)) and by.loc["s2", "sd_x"] == pytest.approx(
        np.std(means, ddof=1)
    )
    assert summary["selections"] == {"0": ["s1", "s2"], "1": ["s1", "s3"], "2": ["s1", "s2"]}
    assert summary["same_as_first_seed"] == pytest.approx(2 / 3)
    assert summary["mean_pairwise_jaccard"] == pytest.approx((1 / 3 + 1 + 1 / 3) / 3)
    one, one_summary = seed_selection_table({0: tables[0]}, k=2)
    assert one["sd"].isna().all() and math.isnan(one_summary["mean_pairwise_jaccard"])
    assert isinstance(out, pd.DataFrame)


def test_study_data_cli_writes_equal_sets_and_rejects_too_many_examples(demo_prepared, tmp_path):
    import json

    from conftest import run_cli

    from complementarity.records import read_prepared

    train = [f"{d}={demo_prepared / d / 'train.jsonl'}" for d in ("arithmetic", "sort")]
    models = json.dumps(study_models(["arithmetic", "sort"]))
    run_cli(
        "study",
        "data",
        "--seed",
        "0",
        "--train",
        *train,
        "--models",
        models,
        "--examples",
        "50",
        "--out-dir",
        str(tmp_path / "ok"),
    )
    manifest = json.loads((tmp_path / "ok" / "manifest.json").read_text())
    assert manifest["examples_per_model"] == 50
    for model in ("arithmetic", "sort", "arithmetic+sort"):
        assert len(read_prepared(tmp_path / "ok" / f"{model}.jsonl")) == 50
    proc = run_cli(
        "study", "data", "--seed", "0", "--train", *train, "--models", models, "--examples", "100000", "--out-dir", str(tmp_path / "bad"),
        check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "ERROR: study.examples_per_model: 100000 examples per model" in proc.stderr
    assert not (tmp_path / "bad").exists(), "a failed study-data left files behind"
