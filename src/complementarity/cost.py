"""What each stage cost: jobs, wall and CPU time, tokens, peak memory, and GPU-hours asked for.

Sources: Snakemake's benchmark files (``benchmarks/<rule>/<job>.tsv``: wall seconds ``s``, ``cpu_time``
in seconds, ``max_rss`` in MB), the trainers' ``metrics.json`` (response tokens trained, the training
loop's own seconds, peak GPU memory) and the scoring jobs' output (response tokens scored). The
GPU-hours are what the jobs *requested* (``resources: gpu`` x ``runtime`` of each rule, as a SLURM job
asks for them), not what they used.

The Complementarity selection is fan-out + scoring + final; it is set against the all-data baseline
(one fine-tune on every shard). Building the base model is needed by both and counted apart.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# Snakemake rule -> stage. Rules not listed (data preparation, evaluation of extra models) keep their name.
STAGES = {
    "build_base_model": "base model",
    "finetune_shard": "fan-out",
    "score_base": "scoring",
    "score_group": "scoring",
    "finetune_final": "final (retrain)",
    "merge_final": "final (merge)",
    "finetune_all_data": "all-data baseline",
    "finetune_random": "random-k baselines",
    "evaluate_model": "evaluation",
    "evaluate_group": "evaluation",
    "export_merged": "export",
}
FINAL_RULES = {"retrain": "finetune_final", "merge": "merge_final"}
COLUMNS = [
    "stage",
    "jobs",
    "wall_s",
    "cpu_s",
    "train_s",
    "tokens_trained",
    "tokens_scored",
    "peak_rss_mb",
    "peak_gpu_mem_gb",
    "gpu_hours_requested",
    "data_fraction",
]


def cost_jobs(
    *,
    shards: list[str],
    shard_groups: list[str],
    final_dirs: dict[str, str],
    baselines: dict[str, str],
    eval_jobs: list[str],
) -> dict[str, str | None]:
    """{rule/job: its adapter folder (metrics.json inside), its scores file, or None} of a run's compute jobs.

    ``final_dirs``: {method: adapter folder} of the final models built; ``baselines``: {rule/job: adapter
    folder} of the baseline fine-tunes; ``eval_jobs``: the evaluation jobs (``rule/job``). Each job's benchmark file
    is benchmarks/<rule>/<job>.tsv.
    """
    jobs: dict[str, str | None] = {"build_base_model/build_base_model": None}
    jobs |= {f"finetune_shard/{s}": f"results/shards/{s}" for s in shards}
    jobs["score_base/score_base"] = "results/scores/base.json"
    jobs |= {f"score_group/{g}": f"results/scores/{g}.json" for g in shard_groups}
    for method, folder in final_dirs.items():
        rule = FINAL_RULES[method]
        jobs[f"{rule}/{rule}"] = folder
    jobs |= baselines
    jobs |= dict.fromkeys(eval_jobs)
    return jobs


def cost_files(jobs: dict[str, str | None], kind: str) -> dict[str, str]:
    """{RULE/JOB: FILE} the cost table reads: the trainers' metrics.json (``metrics``), or the scoring
    outputs (``scores``)."""
    if kind == "metrics":
        return {job: f"{path}/metrics.json" for job, path in jobs.items() if path and not path.endswith(".json")}
    return {job: path for job, path in jobs.items() if path and path.endswith(".json")}


def requested(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """{rule: {gpu, runtime, mem_mb}} from each rule's declared resources (integers only)."""
    keys = ("gpu", "runtime", "mem_mb")
    return {rule: {k: res[k] for k in keys if isinstance(res.get(k), int)} for rule, res in resources.items()}


def _number(value: Any) -> float:
    """A benchmark cell as a float (NaN for Snakemake's ``NA``, written when a job was too short to sample)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_benchmark(path: str | Path) -> dict[str, float]:
    """The last row of a Snakemake benchmark file (a --benchmark-repeats run has several)."""
    lines = Path(path).read_text().splitlines()
    header, last = lines[0].split("\t"), lines[-1].split("\t")
    row = dict(zip(header, last, strict=True))
    return {
        "wall_s": _number(row.get("s")),
        "cpu_s": _number(row.get("cpu_time")),
        "max_rss": _number(row.get("max_rss")),
    }


def job_key(path: str | Path) -> str:
    """``rule/job`` of benchmarks/<rule>/<job>.tsv."""
    p = Path(path)
    return f"{p.parent.name}/{p.stem}"


def tokens_scored(path: str | Path) -> int:
    """Response tokens a scoring job scored: every model on every domain's validation set."""
    scores = json.loads(Path(path).read_text())["scores"]
    return sum(int(d["response_tokens"]) for model in scores.values() for d in model.values())


def _nansum(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) if kept else math.nan


def _nanmax(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return max(kept) if kept else math.nan


def cost_rows(
    *,
    benchmarks: list[str | Path],
    metrics: dict[str, str | Path],
    scores: dict[str, str | Path],
    requested: dict[str, dict[str, Any]],
    final_method: str,
    total_records: int,
    selected_records: int,
) -> list[dict[str, Any]]:
    """One row per stage, then the Complementarity-selection total and the all-data baseline total."""
    jobs: dict[str, dict[str, float]] = {}
    for path in benchmarks:
        key = job_key(path)
        rule = key.split("/")[0]
        job = read_benchmark(path)
        m = json.loads(Path(metrics[key]).read_text()) if key in metrics else {}
        job["train_s"] = _number(m.get("train_seconds"))
        job["tokens_trained"] = float(m.get("response_tokens_trained") or 0)
        job["peak_gpu_mem_gb"] = _number(m.get("peak_gpu_memory_gb"))
        job["tokens_scored"] = float(tokens_scored(scores[key])) if key in scores else 0.0
        req = requested.get(rule, {})
        job["gpu_hours_requested"] = float(req.get("gpu") or 0) * float(req.get("runtime") or 0) / 60
        job["stage"] = STAGES.get(rule, rule)
        jobs[key] = job

    def summarize(stage: str, selected: list[dict[str, Any]], fraction: float | None) -> dict[str, Any]:
        return {
            "stage": stage,
            "jobs": len(selected),
            "wall_s": _nansum([j["wall_s"] for j in selected]),
            "cpu_s": _nansum([j["cpu_s"] for j in selected]),
            "train_s": _nansum([j["train_s"] for j in selected]),
            "tokens_trained": int(sum(j["tokens_trained"] for j in selected)),
            "tokens_scored": int(sum(j["tokens_scored"] for j in selected)),
            "peak_rss_mb": _nanmax([j["max_rss"] for j in selected]),
            "peak_gpu_mem_gb": _nanmax([j["peak_gpu_mem_gb"] for j in selected]),
            "gpu_hours_requested": sum(j["gpu_hours_requested"] for j in selected),
            "data_fraction": fraction,
        }

    stages = list(dict.fromkeys(j["stage"] for j in jobs.values()))
    order = list(dict.fromkeys([*STAGES.values(), *stages]))
    rows = [summarize(s, [j for j in jobs.values() if j["stage"] == s], None) for s in order if s in stages]
    fraction = selected_records / total_records if total_records else math.nan
    # final.method's total first; the other method's too when it was built (evaluation.final_methods).
    for method in sorted(FINAL_RULES, key=lambda m: m != final_method):
        final_stage = STAGES[FINAL_RULES[method]]
        if method != final_method and final_stage not in stages:
            continue
        rows.append(
            summarize(
                f"total: Complementarity selection (fan-out + scoring + {final_stage})",
                [j for j in jobs.values() if j["stage"] in ("fan-out", "scoring", final_stage)],
                fraction,
            )
        )
    baseline = [j for j in jobs.values() if j["stage"] == "all-data baseline"]
    if baseline:
        rows.append(summarize("total: all-data baseline", baseline, 1.0))
    return rows


def shard_records(shards_table: str | Path, selection: str | Path) -> dict[str, int]:
    """{total_records, selected_records} from checked.tsv and selection.json."""
    import pandas as pd

    df = pd.read_csv(shards_table, sep="\t", dtype={"shard": str})
    chosen = set(json.loads(Path(selection).read_text())["selected"])
    return {
        "total_records": int(df["records"].sum()),
        "selected_records": int(df.loc[df["shard"].isin(chosen), "records"].sum()),
    }


def write_cost(out: str | Path, **kwargs: Any) -> list[dict[str, Any]]:
    import pandas as pd

    from .tables import write_tsv

    rows = cost_rows(**kwargs)
    write_tsv(pd.DataFrame(rows, columns=COLUMNS), out)
    return rows


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, spec)


def markdown_cost(path: str | Path) -> list[str]:
    """The cost table of report.md, from cost.tsv."""
    import pandas as pd

    df = pd.read_csv(path, sep="\t")
    header = ["stage", "jobs", "wall (s)", "CPU (s)", "trainer (s)", "tokens trained", "tokens scored",
              "peak RSS (MB)", "peak GPU mem (GB)"]  # fmt: skip
    header += ["GPU-h requested", "data used"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for _, r in df.iterrows():
        cells = [
            f"**{r['stage']}**" if str(r["stage"]).startswith("total") else str(r["stage"]),
            str(int(r["jobs"])),
            _fmt(r["wall_s"], ".1f"),
            _fmt(r["cpu_s"], ".1f"),
            _fmt(r["train_s"], ".1f"),
            f"{int(r['tokens_trained']):,}",
            f"{int(r['tokens_scored']):,}",
            _fmt(r["peak_rss_mb"], ".0f"),
            _fmt(r["peak_gpu_mem_gb"], ".2f"),
        ]
        cells.append(_fmt(r["gpu_hours_requested"], ".2f"))
        cells.append("–" if pd.isna(r["data_fraction"]) else f"{100 * r['data_fraction']:.0f}%")
        lines.append("| " + " | ".join(cells) + " |")
    totals = df[df["stage"].astype(str).str.startswith("total")].set_index("stage")
    sel = [s for s in totals.index if "selection" in s]
    if sel and "total: all-data baseline" in totals.index:
        a, b = totals.loc[sel[0]], totals.loc["total: all-data baseline"]
        if b["wall_s"] and not pd.isna(b["wall_s"]):
            lines += [
                "",
                f"The selection took {a['wall_s'] / b['wall_s']:.2f}x the all-data baseline's wall time "
                f"(summed over jobs; jobs in parallel overlap) and trained on "
                f"{100 * a['data_fraction']:.0f}% of the data in its final stage.",
            ]
    return lines


# --- CLI: complementarity cost (rule cost_table in workflow/rules/cost.smk) --------------------------


def register_arguments(parser) -> None:
    from .arguments import json_arg, pair

    parser.add_argument("--benchmarks", nargs="+", required=True, help="benchmarks/<rule>/<job>.tsv files")
    parser.add_argument("--metrics", type=pair, nargs="*", help="RULE/JOB=metrics.json of a trained or merged adapter")
    parser.add_argument("--scores", type=pair, nargs="*", help="RULE/JOB=scores JSON (response tokens scored)")
    parser.add_argument("--final-method", choices=sorted(FINAL_RULES), required=True, help="config final.method")
    parser.add_argument("--requested", type=json_arg, default={}, help="JSON: rule -> {gpu, runtime, mem_mb} asked for")
    parser.add_argument("--shards-table", required=True, help="checked.tsv (records per shard)")
    parser.add_argument("--selection", required=True, help="selection.json (the selected shards)")
    parser.add_argument("--out", required=True, help="output cost.tsv")


def cost_table_job(
    out: str | Path,
    *,
    benchmarks: list[str],
    metrics: dict[str, str],
    scores: dict[str, str],
    requested: dict[str, dict[str, int]],
    final_method: str,
    shards_table: str | Path,
    selection: str | Path,
    log: str | Path,
) -> None:
    """The cost_table rule (workflow/scripts/cost_table.py) rather than a shell command: its arguments
    name every job's files, which at N > ~1,000 shards exceed Linux's 128 KiB limit on one command-line
    argument (``Argument list too long``). Logs go to ``log``."""
    import logging

    handler = logging.FileHandler(log, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("complementarity")
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        write_cost(
            out, benchmarks=benchmarks, metrics=metrics, scores=scores, requested=requested,
            final_method=final_method, **shard_records(shards_table, selection),
        )  # fmt: skip
        log_cost = logging.getLogger(__name__)
        log_cost.info("cost of %d jobs written to %s", len(benchmarks), out)
    except Exception:
        root.exception("cost_table failed")
        raise
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def run(args) -> None:
    write_cost(
        args.out, benchmarks=args.benchmarks, metrics=dict(args.metrics or []), scores=dict(args.scores or []),
        requested=args.requested, final_method=args.final_method,
        **shard_records(args.shards_table, args.selection),
    )  # fmt: skip
