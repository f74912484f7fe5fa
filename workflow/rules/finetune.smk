"""Fine-tune: LoRA fine-tunes of M, one per shard (M_i), on the selected shards (the final model),
and on the baselines' data (all shards; k random shards). One rule, finetune_shard, holds the
command; the others are derived from it with `use rule ... with:`.

REQUIRED INPUTS: results/base_model/, results/data/shards/{shard}.jsonl, results/selection.json,
the random-k selections (selection.smk).
OUTPUTS: results/shards/{shard}/, results/final/ (final.method retrain; else results/final_retrain/
when evaluation.final_methods asks for it), results/baselines/all_data/,
results/baselines/random_k/seed{seed}/adapter/ (each a PEFT adapter + metrics.json + train_config.json).
"""


rule finetune_shard:
    """LoRA/QLoRA fine-tune M on one shard, giving M_i."""
    input:
        base="results/base_model",
        train="results/data/shards/{shard}.jsonl",
        # No training starts before every shard passed its checks; ancient(): editing one shard
        # re-checks all, but must not rerun the other shards' fine-tunes.
        shards_checked=ancient("results/data/shards/checked.tsv"),
    output:
        adapter=directory("results/shards/{shard}"),
    log:
        "logs/finetune_shard/{shard}.log",
    benchmark:
        "benchmarks/finetune_shard/{shard}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=get_finetune_minutes,
        cpus_per_task=lambda wildcards, threads: threads,
        batch_divisor=get_batch_divisor,
        # Checkpoint cadence and training logs: resources, not params, so changing them reruns nothing.
        checkpoint_every=FINETUNE_RUNTIME.checkpoint_every,
        keep_checkpoints=int(FINETUNE_RUNTIME.keep_checkpoints),
        report_to=FINETUNE_RUNTIME.report_to,
    params:
        base_model=as_json(config["base_model"]),
        finetune=PLAN.finetune_params(),
        name=lambda wildcards: wildcards.shard,
        checkpoints=lambda wildcards: f"results/checkpoints/{wildcards.shard}",
        selection=selection_arg,
    shell:
        "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        "complementarity finetune"
        " --base {input.base:q}"
        " --base-model {params.base_model:q}"
        " --finetune {params.finetune:q}"
        " --checkpoint-every {resources.checkpoint_every}"
        " --keep-checkpoints {resources.keep_checkpoints}"
        " --report-to {resources.report_to}"
        " --train {input.train:q}"
        " {params.selection}"
        " --name {params.name}"
        " --checkpoint-dir {params.checkpoints:q}"
        " --batch-divisor {resources.batch_divisor}"
        " --out {output.adapter:q}"
        " > {log:q} 2>&1"


# Fine-tune M on the union of the selected shards: the final model (final.method retrain; in
# results/final_retrain when evaluation.final_methods asks for it beside a merged final model).
use rule finetune_shard as finetune_final with:
    input:
        base="results/base_model",
        selection="results/selection.json",
        train=get_shard_files(),
    output:
        adapter=directory(PLAN.final_dir("retrain")),
    log:
        "logs/finetune_final/finetune_final.log",
    benchmark:
        "benchmarks/finetune_final/finetune_final.tsv"
    params:
        name=PLAN.final_name("retrain"),
        checkpoints=f"results/checkpoints/{PLAN.final_name('retrain')}",


# Baseline: fine-tune on the union of all shards.
use rule finetune_shard as finetune_all_data with:
    input:
        base="results/base_model",
        train=get_shard_files(),
        shards_checked=ancient("results/data/shards/checked.tsv"),
    output:
        adapter=directory("results/baselines/all_data"),
    log:
        "logs/finetune_all_data/finetune_all_data.log",
    benchmark:
        "benchmarks/finetune_all_data/finetune_all_data.tsv"
    priority: 1  # the longest fine-tune: start it as soon as the base model is ready
    params:
        name="all_data",
        checkpoints="results/checkpoints/all_data",


# Baseline: fine-tune on the union of k random shards (the plan drew them).
use rule finetune_final as finetune_random with:
    input:
        base="results/base_model",
        selection="results/baselines/random_k/seed{seed}/selection.json",
        train=get_random_shards,
        shards_checked=ancient("results/data/shards/checked.tsv"),
    output:
        adapter=directory("results/baselines/random_k/seed{seed}/adapter"),
    log:
        "logs/finetune_random/seed{seed}.log",
    benchmark:
        "benchmarks/finetune_random/seed{seed}.tsv"
    params:
        name=lambda wildcards: f"random_k_seed{wildcards.seed}",
        checkpoints=lambda wildcards: f"results/checkpoints/random_k_seed{wildcards.seed}",
