"""Tests for :mod:`complementarity.tables`: the Complementarity table and the top-k selection file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from complementarity.errors import UserError
from complementarity.selection import select
from complementarity.tables import complementarity_table, write_tsv

BASE = {"math": {"nll": 2.0}, "code": {"nll": 4.0}}
SHARDS = {
    "s1": {"math": {"nll": 1.5}, "code": {"nll": 4.0}},  # relative: 0.25, 0.0 -> mean 0.125
    "s2": {"math": {"nll": 1.0}, "code": {"nll": 2.0}},  # 0.5, 0.5 -> 0.5
    "s3": {"math": {"nll": 2.5}, "code": {"nll": 4.0}},  # -0.25, 0.0 -> -0.125
}


def test_table_columns_and_order() -> None:
    df = complementarity_table(BASE, SHARDS, metric="relative")
    assert list(df.columns) == ["shard", "math", "code", "mean"]
    assert list(df["shard"]) == ["s2", "s1", "s3"]
    assert list(df["mean"]) == pytest.approx([0.5, 0.125, -0.125])
    s1 = df[df["shard"] == "s1"].iloc[0]
    assert s1["math"] == pytest.approx(0.25)
    assert s1["code"] == pytest.approx(0.0)
    assert list(df.index) == [0, 1, 2]


def test_table_domain_order_follows_base() -> None:
    base = {"code": BASE["code"], "math": BASE["math"]}
    df = complementarity_table(base, SHARDS, metric="relative")
    assert list(df.columns) == ["shard", "code", "math", "mean"]


def test_table_absolute_and_weights() -> None:
    df = complementarity_table(BASE, SHARDS, metric="absolute", weights={"math": 1.0, "code": 0.0})
    by_shard = dict(zip(df["shard"], df["mean"], strict=True))
    assert by_shard == pytest.approx({"s1": 0.5, "s2": 1.0, "s3": -0.5})  # math only
    assert list(df["shard"]) == ["s2", "s1", "s3"]


def test_table_ties_sorted_by_shard() -> None:
    shards = {name: {"math": {"nll": 1.0}, "code": {"nll": 2.0}} for name in ("b", "c", "a")}
    df = complementarity_table(BASE, shards, metric="relative")
    assert list(df["shard"]) == ["a", "b", "c"]


def test_shard_missing_domain() -> None:
    shards = {**SHARDS, "s4": {"math": {"nll": 1.0}}}
    with pytest.raises(UserError) as info:
        complementarity_table(BASE, shards, metric="relative")
    msg = str(info.value)
    assert "'s4'" in msg and "code" in msg


def test_select_round_trip(tmp_path: Path) -> None:
    table = tmp_path / "tables" / "complementarity.tsv"
    write_tsv(complementarity_table(BASE, SHARDS, metric="relative"), table)
    out = tmp_path / "selection.json"
    result = select(table, k=2, metric="relative", out=out)
    on_disk = json.loads(out.read_text())
    assert on_disk == result
    assert set(on_disk) == {"k", "metric", "selected", "scores", "ranking"}
    assert on_disk["k"] == 2
    assert on_disk["metric"] == "relative"
    assert on_disk["selected"] == ["s2", "s1"]
    assert on_disk["ranking"] == ["s2", "s1", "s3"]
    assert set(on_disk["scores"]) == {"s1", "s2", "s3"}
    assert on_disk["scores"]["s2"] == pytest.approx({"mean": 0.5, "math": 0.5, "code": 0.5})
    assert on_disk["scores"]["s3"]["math"] == pytest.approx(-0.25)


def test_select_tie_smaller_id_wins(tmp_path: Path) -> None:
    table = tmp_path / "c.tsv"
    table.write_text("shard\tmath\tmean\nshard07\t0.3\t0.3\nshard02\t0.3\t0.3\nshard05\t0.1\t0.1\n")
    result = select(table, k=1, metric="absolute", out=tmp_path / "sel.json")
    assert result["selected"] == ["shard02"]
    assert result["ranking"] == ["shard02", "shard07", "shard05"]


def test_select_keeps_numeric_looking_ids_as_strings(tmp_path: Path) -> None:
    table = tmp_path / "c.tsv"
    table.write_text("shard\tmath\tmean\n001\t0.1\t0.1\n002\t0.2\t0.2\n")
    result = select(table, k=1, metric="relative", out=tmp_path / "sel.json")
    assert result["selected"] == ["002"]
    assert set(result["scores"]) == {"001", "002"}


def test_select_k_too_large(tmp_path: Path) -> None:
    table = tmp_path / "c.tsv"
    write_tsv(complementarity_table(BASE, SHARDS, metric="relative"), table)
    with pytest.raises(UserError, match="k=4"):
        select(table, k=4, metric="relative", out=tmp_path / "sel.json")
    assert not (tmp_path / "sel.json").exists()
