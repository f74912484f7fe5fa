"""Fan-out: one LoRA fine-tune and one scoring job per candidate shard.

REQUIRED INPUTS: results/base_model/, results/data/shards/{shard}.jsonl, validation sets.
OUTPUTS: results/shards/{shard}/ (PEFT adapter + metrics.json + train_config.json),
results/scores/shards/{shard}.json (L_{M_i} on every domain's validation set).
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
        " --train {input.train:q}"
        " --name {wildcards.shard}"
        " --checkpoint-dir results/checkpoints/{wildcards.shard}"
        " --batch-divisor {resources.batch_divisor}"
        " --out {output.adapter:q}"
        " > {log:q} 2>&1"


rule score_shard:
    """Mean NLL per response token of M_i on every domain's validation set (base loaded once)."""
    input:
        base="results/base_model",
        adapter="results/shards/{shard}",
        validation=get_prepared("validation"),
    output:
        scores="results/scores/shards/{shard}.json",
    log:
        "logs/score_shard/{shard}.log",
    benchmark:
        "benchmarks/score_shard/{shard}.tsv"
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
    shell:
        "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        "complementarity score"
        " --base {input.base:q}"
        " --base-model {params.base_model:q}"
        " --validation {params.validation}"
        " --adapter {wildcards.shard}={input.adapter:q}"
        " --max-seq-len {params.max_seq_len}"
        " --batch-size {params.batch_size}"
        " --out {output.scores:q}"
        " > {log:q} 2>&1"
