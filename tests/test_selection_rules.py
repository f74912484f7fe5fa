"""Selection rules on hand-made score tables where the right answer is known."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from complementarity import selection as rules
from complementarity.errors import UserError
from complementarity.selection import select
from complementarity.tables import write_tsv

# Two domains. a1 and a2 both help domain a a lot and b not at all; b1 helps b; flat helps both a little.
# Means: a1 0.25, a2 0.24, flat 0.15, b1 0.125, bad -0.1.
TABLE = {
    "a1": {"a": 0.50, "b": 0.00},
    "a2": {"a": 0.48, "b": 0.00},
    "b1": {"a": 0.00, "b": 0.25},
    "flat": {"a": 0.15, "b": 0.15},
    "bad": {"a": -0.10, "b": -0.10},
}


def means(table, weights=None):
    from complementarity.metric import weighted_mean

    return {s: weighted_mean(per, weights) for s, per in table.items()}


def test_topk_takes_the_best_means_with_ties_to_the_smaller_id():
    assert rules.top_k(means(TABLE), 2) == ["a1", "a2"]
    assert rules.top_k({"s2": 0.1, "s1": 0.1, "s3": 0.0}, 2) == ["s1", "s2"]
    with pytest.raises(UserError, match="k=6 must be between 1 and the number of shards N=5"):
        rules.top_k(means(TABLE), 6)


def test_coverage_serves_the_domain_top_k_neglects():
    # Top-2 spends both picks on domain a (F = (0.5 + 0) / 2 = 0.25); coverage adds b1 (F = (0.5+0.25)/2).
    assert rules.coverage(TABLE, 2) == ["a1", "b1"]
    # Its first pick is top-1; with k = N it returns every shard.
    assert rules.coverage(TABLE, 1) == ["a1"]
    assert sorted(rules.coverage(TABLE, 5)) == sorted(TABLE)


def test_coverage_falls_back_to_the_mean_when_no_shard_adds_anything():
    # After a1 and b1 nothing improves a max: the third pick is by mean (a2 0.24 > flat 0.15), as top-k would.
    assert rules.coverage(TABLE, 3) == ["a1", "b1", "a2"]
    # Identical shards: ties go to the smaller id.
    same = {"s2": {"a": 0.1, "b": 0.2}, "s1": {"a": 0.1, "b": 0.2}, "s3": {"a": 0.1, "b": 0.2}}
    assert rules.coverage(same, 2) == ["s1", "s2"]


def test_coverage_respects_domain_weights():
    # Domain b weighted 0: serving it is worth nothing, so coverage is top-k on domain a.
    assert rules.coverage(TABLE, 2, {"a": 1.0, "b": 0.0}) == ["a1", "a2"]


def test_coverage_prefers_a_generalist_when_it_beats_two_specialists():
    # g helps both domains almost as much as each specialist helps its own.
    table = {"s_a": {"a": 0.6, "b": 0.0}, "s_b": {"a": 0.0, "b": 0.45}, "g": {"a": 0.4, "b": 0.4}}
    # First pick by F alone: g (0.4) > s_a (0.3) > s_b (0.225). Then s_a adds (0.6-0.4)/2 = 0.1, s_b 0.025.
    assert rules.coverage(table, 2) == ["g", "s_a"]


def test_threshold_keeps_every_shard_whose_lower_bound_clears_it():
    m = means(TABLE)
    lower = {"a1": 0.20, "a2": 0.02, "b1": 0.05, "flat": -0.01, "bad": -0.2}
    assert rules.above_threshold(m, lower, 0.0) == ["a1", "a2", "b1"]  # best mean first
    assert rules.above_threshold(m, lower, 0.1) == ["a1"]
    assert rules.above_threshold(m, lower, 0.3) == []
    assert rules.choose("threshold", TABLE, k=2, lower=lower, threshold_value=0.03) == ["a1", "b1"]
    with pytest.raises(
        UserError, match=r"no shard's lower confidence bound is above selection.threshold=0.3 \(the best is a1"
    ):
        rules.choose("threshold", TABLE, k=2, lower=lower, threshold_value=0.3)
    assert rules.choose("threshold", TABLE, k=2, lower=lower, threshold_value=0.3, allow_empty=True) == []


def test_unknown_rule_names_the_choices():
    with pytest.raises(UserError, match="unknown rule 'best'; choose one of topk, coverage, threshold"):
        rules.choose("best", TABLE, k=2)


def _table_file(tmp_path, lower):
    rows = []
    for s, per in TABLE.items():
        mean = (per["a"] + per["b"]) / 2
        rows.append({"shard": s, **per, "mean": mean, "mean_ci_low": lower[s], "mean_ci_high": mean + 0.05})
    df = pd.DataFrame(rows).sort_values("mean", ascending=False)
    path = tmp_path / "complementarity.tsv"
    write_tsv(df, path)
    return path


@pytest.mark.parametrize(
    ("method", "expected"), [("topk", ["a1", "a2"]), ("coverage", ["a1", "b1"]), ("threshold", ["a1", "a2", "b1"])]
)
def test_select_writes_the_rule_and_its_count(tmp_path, method, expected):
    lower = {"a1": 0.20, "a2": 0.02, "b1": 0.05, "flat": -0.01, "bad": -0.2}
    out = tmp_path / "selection.json"
    sel = select(_table_file(tmp_path, lower), k=2, metric="relative", out=out, method=method, threshold=0.0)
    assert sel == json.loads(out.read_text())
    assert sel["selected"] == expected and sel["k"] == len(expected) and sel["method"] == method
    assert sel["ranking"] == ["a1", "a2", "flat", "b1", "bad"]
    assert ("threshold" in sel) == (method == "threshold")


def test_cli_threshold_with_no_passing_shard_fails_and_random_k_takes_the_selected_count(tmp_path):
    from conftest import run_cli

    lower = {"a1": 0.20, "a2": 0.02, "b1": 0.05, "flat": -0.01, "bad": -0.2}
    table = _table_file(tmp_path, lower)
    args = ["selection", "threshold", "--table", str(table), "--k", "2", "--metric", "relative"]
    args += ["--weights", "{}", "--confidence", "0.95"]
    proc = run_cli(*args, "--threshold", "0.5", "--out", str(tmp_path / "none.json"), check=False)
    assert (
        proc.returncode == 2 and "ERROR: selection.method threshold: no shard's lower confidence bound" in proc.stderr
    )
    assert "lower selection.threshold or use selection.method topk" in proc.stderr
    assert not (tmp_path / "none.json").exists()
    run_cli(*args, "--threshold", "0.0", "--out", str(tmp_path / "sel.json"))
    assert json.loads((tmp_path / "sel.json").read_text())["selected"] == ["a1", "a2", "b1"]
    out = tmp_path / "random.json"
    run_cli(
        "selection", "random", "--shards", *TABLE, "--k-from", str(tmp_path / "sel.json"), "--seed", "1",
        "--out", str(out),
    )  # fmt: skip
    drawn = json.loads(out.read_text())
    assert len(drawn["selected"]) == drawn["k"] == 3 and set(drawn["selected"]) <= set(TABLE)
    proc = run_cli("selection", "random", "--seed", "1", "--out", str(tmp_path / "r2.json"), check=False)
    assert proc.returncode == 2 and "--k-from selection.json with --shards" in proc.stderr
