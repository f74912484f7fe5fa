"""The selection-rule comparison table (study.rules) on hand-made evaluations."""

from __future__ import annotations

import json

import pytest

from complementarity.rule_study import run_rule_study


def _eval(path, per_domain):
    doms = {
        d: {"per_item": [{"correct": c} for c in items], "score": sum(items) / len(items)}
        for d, items in per_domain.items()
    }
    path.write_text(json.dumps({"domains": doms}))
    return str(path)


def test_rules_table_and_verdicts(tmp_path):
    # coverage is right on 30 more items of b than topk (and equal on a); threshold equals topk.
    a = [1] * 50 + [0] * 50
    evals = [
        ("topk", _eval(tmp_path / "t.json", {"a": a, "b": [1] * 10 + [0] * 90})),
        ("coverage", _eval(tmp_path / "c.json", {"a": a, "b": [1] * 40 + [0] * 60})),
        ("threshold", _eval(tmp_path / "h.json", {"a": a, "b": [1] * 10 + [0] * 90})),
    ]
    sels = []
    for rule, chosen in (("topk", ["s1", "s2"]), ("coverage", ["s1", "s3"]), ("threshold", ["s1", "s2", "s4"])):
        (tmp_path / f"{rule}.sel.json").write_text(json.dumps({"selected": chosen}))
        sels.append((rule, str(tmp_path / f"{rule}.sel.json")))
    df = run_rule_study(
        evals, sels, confidence=0.95, resamples=1000, tiny=False,
        out_table=tmp_path / "rules.tsv", out_report=tmp_path / "rules.md",
    )  # fmt: skip
    by = df.set_index(["rule", "scope"])
    assert len(df) == 9 and by.loc[("coverage", "all"), "score"] == pytest.approx(90 / 200)
    assert by.loc[("coverage", "b"), "diff_vs_topk"] == pytest.approx(0.3) and by.loc[("coverage", "b"), "diff_low"] > 0
    assert by.loc[("coverage", "a"), "diff_vs_topk"] == 0 and by.loc[("threshold", "all"), "k"] == 3
    assert by.loc[("topk", "all"), "ci_low"] < by.loc[("topk", "all"), "score"] < by.loc[("topk", "all"), "ci_high"]
    text = (tmp_path / "rules.md").read_text()
    assert "- `coverage` (s1 s3): better than `topk`." in text
    assert "- `threshold` (s1 s2 s4): not distinguishable from `topk`" in text
    assert "| coverage | s1 s3 (2) | b | 40.0 [" in text and "| +30.0 [" in text


def test_graded_data_has_the_stated_skew_and_corruption(tmp_path):
    from complementarity.demo import GENERATORS
    from complementarity.graded_demo import make_graded_data
    from complementarity.records import read_prepared

    shards = (("arithmetic", 0.0), ("sort", 0.5))
    m = make_graded_data(tmp_path, shards=shards, records_per_shard=40, n_train=30, n_test=20)
    held_out = {
        ex.prompt
        for d in GENERATORS
        for s in ("train", "test")
        for ex in read_prepared(tmp_path / "domains" / d / f"{s}.jsonl")
    }
    for name, spec in m["shards"].items():
        exs = read_prepared(tmp_path / "shards" / f"{name}.jsonl")
        assert len(exs) == 40 and not held_out & {ex.prompt for ex in exs}
        assert spec["records"][spec["home"]] == 28  # 70% home domain
    sort_shard = read_prepared(tmp_path / "shards" / "g02-sort-c050.jsonl")
    sorted_ok = [ex for ex in sort_shard if ex.prompt.startswith("sort:")]
    right = sum(" ".join(sorted(ex.prompt.removeprefix("sort: ").split())) == ex.response for ex in sorted_ok)
    assert right == len(sorted_ok) // 2  # half of the home-domain records corrupted
