"""Fan-out: one LoRA fine-tune per candidate shard, and scoring jobs of scoring.group_size adapters each.

REQUIRED INPUTS: results/base_model/, results/data/shards/{shard}.jsonl, validation sets.
OUTPUTS: results/shards/{shard}/ (PEFT adapter + metrics.json + train_config.json),
results/scores/{group}.json (L_{M_i} on every domain's validation set, for each adapter of the group;
groups shards-1, shards-2, ... hold the shard models, study-* and seed*-* the study's models).
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
        runtime=240,
        cpus_per_task=lambda wildcards, threads: threads,
    params:
        base_model=as_json(config["base_model"]),
        finetune=as_json(config["finetune"]),
        name=lambda wildcards: wildcards.shard,
        checkpoints=lambda wildcards: f"results/checkpoints/{wildcards.shard}",
    shell:
        "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        "complementarity finetune"
        " --base {input.base:q}"
        " --base-model {params.base_model:q}"
        " --finetune {params.finetune:q}"
        " --train {input.train:q}"
        " --name {params.name}"
        " --checkpoint-dir {params.checkpoints:q}"
        " --out {output.adapter:q}"
        " > {log:q} 2>&1"


rule score_group:
    """Mean NLL per response token of each adapter of a group on every domain's validation set.

    The base model is loaded once per job and the group's adapters are swapped in turn.
    """
    input:
        base="results/base_model",
        adapters=get_group_adapters,
        validation=get_prepared("validation"),
    output:
        scores="results/scores/{group}.json",
    log:
        "logs/score_group/{group}.log",
    benchmark:
        "benchmarks/score_group/{group}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=60,
        cpus_per_task=lambda wildcards, threads: threads,
    params:
        base_model=as_json(config["base_model"]),
        max_seq_len=config["finetune"]["max_seq_len"],
        batch_size=config["scoring"]["batch_size"],
        validation=validation_args,
        adapters=group_adapter_args,
    shell:
        "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        "complementarity score"
        " --base {input.base:q}"
        " --base-model {params.base_model:q}"
        " --validation {params.validation}"
        " --adapter {params.adapters}"
        " --max-seq-len {params.max_seq_len}"
        " --batch-size {params.batch_size}"
        " --out {output.scores:q}"
        " > {log:q} 2>&1"
