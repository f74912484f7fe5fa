"""What users take away: the cost of each stage, and the final model as one plain transformers model.

REQUIRED INPUTS: the benchmark files of every compute job of the run (benchmarks/<rule>/<job>.tsv),
the adapters' metrics.json, the scoring outputs; results/base_model/ and results/final/ for the export.
OUTPUTS: results/cost.tsv (in the default target); results/export/merged/ (`snakemake export`).
"""


rule cost_table:
    """Jobs, wall/CPU time, tokens trained and scored, peak memory and GPU-hours requested, per stage."""
    input:
        benchmarks=[f"benchmarks/{job}.tsv" for job in get_cost_jobs()],
        outputs=[p for p in get_cost_jobs().values() if p],
        shards_table="results/data/shards/checked.tsv",
        selection="results/selection.json",
    output:
        cost=report("results/cost.tsv", caption="../report/cost.rst", category="Cost"),
    log:
        "logs/cost_table/cost_table.log",
    conda:
        "../../envs/data.yaml"
    params:
        metrics=cost_pairs(get_cost_jobs(), "metrics"),
        scores=cost_pairs(get_cost_jobs(), "scores"),
        requested=get_requested_resources,
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
