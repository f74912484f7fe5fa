"""Fan-in: the Complementarity table, top-k selection, and the final fine-tune.

REQUIRED INPUTS: results/scores/base.json, results/scores/shards-*.json, the shard data.
OUTPUTS: results/complementarity.tsv, results/scores/losses.tsv, results/selection.json,
results/final/ (PEFT adapter of M fine-tuned on the union of the k selected shards).
"""


rule gather_scores:
    """C(M_i, V_j) for every shard and domain, and the mean over domains; best shard first."""
    input:
        base="results/scores/base.json",
        shards=group_scores(SHARD_GROUPS),
        seed_shards=selection_seed_scores(),  # issue 15: selection.seeds > 1
    output:
        table=report(
            "results/complementarity.tsv",
            caption="../report/complementarity.rst",
            category="Complementarity",
        ),
        losses="results/scores/losses.tsv",
        bootstrap="results/scores/bootstrap.npz",  # issue 15
    log:
        "logs/gather_scores/gather_scores.log",
    conda:
        "../../envs/data.yaml"
    params:
        metric=config["selection"]["metric"],
        weights=as_json(config["selection"]["weights"]),
        k=config["selection"]["k"],  # issue 15: P(top-k)
        resamples=config["selection"]["bootstrap"]["resamples"],
        confidence=config["selection"]["bootstrap"]["confidence"],
        bootstrap_seed=config["selection"]["bootstrap"]["seed"],
        seed_scores=selection_seed_args,  # issue 15
    shell:
        "complementarity gather"
        " --base-scores {input.base:q}"
        " --shard-scores {input.shards:q}"
        " {params.seed_scores}"
        " --metric {params.metric}"
        " --weights {params.weights:q}"
        " --k {params.k}"
        " --resamples {params.resamples}"
        " --confidence {params.confidence}"
        " --bootstrap-seed {params.bootstrap_seed}"
        " --bootstrap {output.bootstrap:q}"
        " --out {output.table:q}"
        " --losses {output.losses:q}"
        " > {log:q} 2>&1"


rule select_topk:
    """Choose shards with the rule selection.method (default topk: the k best means; ties: smaller id)."""
    input:
        table="results/complementarity.tsv",
        bootstrap="results/scores/bootstrap.npz",  # issue 15
    output:
        selection="results/selection.json",
    log:
        "logs/select_topk/select_topk.log",
    conda:
        "../../envs/data.yaml"
    params:
        k=config["selection"]["k"],
        metric=config["selection"]["metric"],
        method=config["selection"]["method"],  # issue 15
        threshold=config["selection"]["threshold"],  # issue 15
        weights=as_json(config["selection"]["weights"]),  # issue 15
        confidence=config["selection"]["bootstrap"]["confidence"],  # issue 15
    shell:
        "complementarity select"
        " --table {input.table:q}"
        " --k {params.k}"
        " --metric {params.metric}"
        " --method {params.method}"
        " --threshold {params.threshold}"
        " --weights {params.weights:q}"
        " --bootstrap {input.bootstrap:q}"
        " --confidence {params.confidence}"
        " --out {output.selection:q}"
        " > {log:q} 2>&1"


rule finetune_final:
    """Fine-tune M on the union of the selected shards: the final model."""
    input:
        base="results/base_model",
        selection="results/selection.json",
        shards=expand("results/data/shards/{shard}.jsonl", shard=SHARDS),
    output:
        adapter=directory("results/final"),
    log:
        "logs/finetune_final/finetune_final.log",
    benchmark:
        "benchmarks/finetune_final/finetune_final.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=480,
        cpus_per_task=lambda wildcards, threads: threads,
        batch_divisor=get_batch_divisor,
    params:
        base_model=as_json(config["base_model"]),
        finetune=as_json(config["finetune"]),
    shell:
        "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        "complementarity finetune"
        " --base {input.base:q}"
        " --base-model {params.base_model:q}"
        " --finetune {params.finetune:q}"
        " --train {input.shards:q}"
        " --selection {input.selection:q}"
        " --name final"
        " --checkpoint-dir results/checkpoints/final"
        " --batch-divisor {resources.batch_divisor}"
        " --out {output.adapter:q}"
        " > {log:q} 2>&1"
