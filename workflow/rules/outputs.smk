"""What users take away: the cost of each stage, and the final model as one plain transformers model.

REQUIRED INPUTS: the benchmark files of every compute job of the run (benchmarks/<rule>/<job>.tsv),
the adapters' metrics.json, the scoring outputs; results/base_model/ and results/final/ for the export.
OUTPUTS: results/cost.tsv (in the default target); results/export/merged/ (`snakemake export`).
"""


def cost_jobs():
    """{rule/job: its adapter folder (metrics.json inside), scores file, or None} of the jobs the run makes.

    The benchmark file of each is benchmarks/<rule>/<job>.tsv.
    """
    jobs = {"build_base_model/build_base_model": None}
    jobs |= {f"finetune_shard/{s}": f"results/shards/{s}" for s in SHARDS}
    jobs["score_base/score_base"] = "results/scores/base.json"
    jobs |= {f"score_group/{g}": f"results/scores/{g}.json" for g in SHARD_GROUPS}
    for method in FINAL_METHODS:
        rule_name = {"retrain": "finetune_final", "merge": "merge_final"}[method]
        jobs[f"{rule_name}/{rule_name}"] = final_dir(method)
    if EVALUATE:
        if EVAL["all_data"]:
            jobs["finetune_all_data/finetune_all_data"] = "results/baselines/all_data"
        jobs |= {
            f"finetune_random/seed{s}": f"results/baselines/random_k/seed{s}/adapter"
            for s in RANDOM_SEEDS
        }
        jobs |= {f"evaluate_model/{m}": None for m in eval_models()}
    return jobs


def cost_pairs(kind):
    """``RULE/JOB=FILE`` arguments of the cost command: trainers' metrics or scoring outputs."""
    pairs = []
    for job, path in cost_jobs().items():
        if path and path.endswith(".json") and kind == "scores":
            pairs.append(f"{job}={path}")
        elif path and not path.endswith(".json") and kind == "metrics":
            pairs.append(f"{job}={path}/metrics.json")
    return " ".join(pairs)


def requested_resources(wildcards):
    """{rule: {gpu, runtime, mem_mb}} as the rules declare them (profile set-resources applied)."""
    out = {}
    for name in {job.split("/")[0] for job in cost_jobs()}:
        res = getattr(rules, name).rule.resources
        out[name] = {
            k: res[k] for k in ("gpu", "runtime", "mem_mb") if isinstance(res.get(k), int)
        }
    return as_json(out)


rule cost_table:
    """Jobs, wall/CPU time, tokens trained and scored, peak memory and GPU-hours requested, per stage."""
    input:
        benchmarks=[f"benchmarks/{job}.tsv" for job in cost_jobs()],
        outputs=[p for p in cost_jobs().values() if p],
        shards_table="results/data/shards/checked.tsv",
        selection="results/selection.json",
    output:
        cost=report(
            "results/cost.tsv", caption="../report/cost.rst", category="Cost"
        ),
    log:
        "logs/cost_table/cost_table.log",
    conda:
        "../../envs/data.yaml"
    params:
        metrics=cost_pairs("metrics"),
        scores=cost_pairs("scores"),
        requested=requested_resources,
        final_method=FINAL_METHOD,
    shell:
        "complementarity cost"
        " --benchmarks {input.benchmarks:q}"
        " --metrics {params.metrics}"
        " --scores {params.scores}"
        " --requested {params.requested:q}"
        " --final-method {params.final_method}"
        " --shards-table {input.shards_table:q}"
        " --selection {input.selection:q}"
        " --out {output.cost:q}"
        " > {log:q} 2>&1"


rule export_merged:
    """The final model with its adapter merged into the base weights: plain transformers format + tokenizer."""
    input:
        base="results/base_model",
        adapter="results/final",
    output:
        model=directory("results/export/merged"),
    log:
        "logs/export_merged/export_merged.log",
    benchmark:
        "benchmarks/export_merged/export_merged.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        # A 4-bit base is dequantized on the GPU; otherwise the merge runs on the CPU.
        gpu=1 if config["base_model"]["quantization"] == "4bit" else 0,
        mem_mb=64000,
        runtime=60,
        cpus_per_task=lambda wildcards, threads: threads,
    params:
        base_model=as_json(config["base_model"]),
    shell:
        "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        "complementarity export --merged"
        " --base {input.base:q}"
        " --base-model {params.base_model:q}"
        " --adapter {input.adapter:q}"
        " --out {output.model:q}"
        " > {log:q} 2>&1"


rule export:
    """Target: `snakemake export` writes results/export/merged/ (for vLLM, lm-evaluation-harness, from_pretrained)."""
    input:
        "results/export/merged",
