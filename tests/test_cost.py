"""The cost table: stages from benchmark files and trainers' metrics, selection against the all-data baseline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli

from complementarity.cost import cost_rows, markdown_cost

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(root: Path, job: str, wall: float, cpu: float | str, rss: float | str) -> Path:
    path = root / "benchmarks" / f"{job}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{wall}\t0:00:00\t{rss}\t1\t1\t1\t0\t0\t90\t{cpu}\n")
    return path


def metrics(root: Path, name: str, tokens: int, seconds: float, gpu_gb: float | None = None) -> str:
    path = root / "adapters" / name / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"response_tokens_trained": tokens, "train_seconds": seconds, "peak_gpu_memory_gb": gpu_gb})
    )
    return str(path)


def scores(root: Path, name: str, tokens_per_domain: list[int], models: int) -> str:
    path = root / "scores" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doms = {f"d{i}": {"nll": 1.0, "response_tokens": t} for i, t in enumerate(tokens_per_domain)}
    path.write_text(json.dumps({"scores": {f"m{j}": doms for j in range(models)}}))
    return str(path)


@pytest.fixture
def run(tmp_path):
    """A fake run: 3 shards, 2 scoring jobs, retrain final, all-data baseline, one evaluation (NA memory)."""
    b, m, s = [], {}, {}
    b.append(bench(tmp_path, "build_base_model/build_base_model", 10, 18, 500))
    for i, shard in enumerate(("a", "b", "c")):
        b.append(bench(tmp_path, f"finetune_shard/{shard}", 20 + i, 30 + i, 600 + i))
        m[f"finetune_shard/{shard}"] = metrics(tmp_path, shard, 1000, 15, 2.5 + i)
    b.append(bench(tmp_path, "score_base/score_base", 5, 6, 400))
    s["score_base/score_base"] = scores(tmp_path, "base", [100, 50], 1)
    b.append(bench(tmp_path, "score_group/shards-1", 7, 8, 450))
    s["score_group/shards-1"] = scores(tmp_path, "shards-1", [100, 50], 3)
    b.append(bench(tmp_path, "finetune_final/finetune_final", 25, 40, 700))
    m["finetune_final/finetune_final"] = metrics(tmp_path, "final", 2000, 20, 3.0)
    b.append(bench(tmp_path, "finetune_all_data/finetune_all_data", 50, 80, 800))
    m["finetune_all_data/finetune_all_data"] = metrics(tmp_path, "all", 3000, 45, 3.5)
    b.append(bench(tmp_path, "evaluate_model/final", 3, "NA", "NA"))
    requested = {"finetune_shard": {"gpu": 1, "runtime": 240}, "finetune_final": {"gpu": 1, "runtime": 480},
                 "score_base": {"gpu": 1, "runtime": 60}, "score_group": {"gpu": 1, "runtime": 60},
                 "finetune_all_data": {"gpu": 1, "runtime": 480}, "build_base_model": {"runtime": 30}}  # fmt: skip
    return {"benchmarks": b, "metrics": m, "scores": s, "requested": requested}


def test_cost_rows_per_stage_and_totals(run):
    rows = {r["stage"]: r for r in cost_rows(**run, final_method="retrain", total_records=3000, selected_records=2000)}
    assert list(rows)[:6] == ["base model", "fan-out", "scoring", "final (retrain)", "all-data baseline", "evaluation"]
    fan = rows["fan-out"]
    assert fan["jobs"] == 3 and fan["wall_s"] == 63 and fan["cpu_s"] == 93 and fan["train_s"] == 45
    assert fan["tokens_trained"] == 3000 and fan["peak_rss_mb"] == 602 and fan["peak_gpu_mem_gb"] == 4.5
    assert fan["gpu_hours_requested"] == pytest.approx(3 * 4.0)  # 3 jobs x 1 GPU x 240 min
    assert rows["scoring"]["tokens_scored"] == 150 + 3 * 150 and rows["scoring"]["jobs"] == 2
    assert rows["base model"]["gpu_hours_requested"] == 0  # no GPU asked for
    ev = rows["evaluation"]
    assert math.isnan(ev["cpu_s"]) and math.isnan(ev["peak_rss_mb"]) and ev["wall_s"] == 3  # NA: too short to sample
    total = rows["total: Complementarity selection (fan-out + scoring + final (retrain))"]
    assert total["jobs"] == 6 and total["wall_s"] == 63 + 12 + 25 and total["tokens_trained"] == 5000
    assert total["gpu_hours_requested"] == pytest.approx(12 + 2 + 8) and total["data_fraction"] == pytest.approx(2 / 3)
    baseline = rows["total: all-data baseline"]
    assert baseline["wall_s"] == 50 and baseline["data_fraction"] == 1.0 and baseline["tokens_trained"] == 3000


def test_merge_final_counts_in_the_selection_when_it_is_the_method(run, tmp_path):
    run["benchmarks"].append(bench(tmp_path, "merge_final/merge_final", 4, 5, 650))
    rows = {r["stage"]: r for r in cost_rows(**run, final_method="merge", total_records=3000, selected_records=2000)}
    total = rows["total: Complementarity selection (fan-out + scoring + final (merge))"]
    assert total["jobs"] == 6 and total["wall_s"] == 63 + 12 + 4 and total["tokens_trained"] == 3000
    assert rows["final (retrain)"]["jobs"] == 1  # evaluated alongside: its own total row, after final.method's
    stages = list(rows)
    other = "total: Complementarity selection (fan-out + scoring + final (retrain))"
    assert stages.index(other) == stages.index(total["stage"]) + 1 and rows[other]["wall_s"] == 63 + 12 + 25


def test_cost_cli_writes_the_tsv_and_the_report_table(run, tmp_path):
    shards = tmp_path / "checked.tsv"
    shards.write_text("shard\trecords\tdomains\na\t1000\tx\nb\t1000\tx\nc\t1000\tx\n")
    sel = tmp_path / "selection.json"
    sel.write_text(json.dumps({"selected": ["a", "c"]}))
    out = tmp_path / "cost.tsv"
    run_cli(
        "cost", "--benchmarks", *map(str, run["benchmarks"]),
        "--metrics", *[f"{k}={v}" for k, v in run["metrics"].items()],
        "--scores", *[f"{k}={v}" for k, v in run["scores"].items()],
        "--requested", json.dumps(run["requested"]), "--final-method", "retrain",
        "--shards-table", str(shards), "--selection", str(sel), "--out", str(out),
    )  # fmt: skip
    df = pd.read_csv(out, sep="\t")
    assert df["stage"].iloc[-1] == "total: all-data baseline"
    assert df.set_index("stage").loc["fan-out", "tokens_trained"] == 3000
    text = "\n".join(markdown_cost(out))
    assert "| **total: all-data baseline** | 1 | 50.0 | 80.0 | 45.0 | 3,000 | 0 | 800 | 3.50 | 8.00 | 100% |" in text
    assert "| evaluation | 1 | 3.0 | – |" in text
    assert "The selection took 2.00x the all-data baseline's wall time" in text and "67% of the data" in text
