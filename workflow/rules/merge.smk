"""Merge: the final model without retraining (final.method merge), the selected shards' LoRA adapters
combined with PEFT's weighted adapter merging (final.merge).

REQUIRED INPUTS: results/base_model/, results/selection.json, results/shards/{shard}/.
OUTPUTS: results/final/ (final.method merge; else results/final_merge/ when evaluation.final_methods
asks for it): a PEFT adapter + metrics.json + train_config.json, like a fine-tune's.
"""


rule merge_final:
    """Merge the selected shards' LoRA adapters (no training): the final model with final.method merge."""
    input:
        base="results/base_model",
        selection="results/selection.json",
        adapters=expand("results/shards/{shard}", shard=SHARDS),
    output:
        adapter=directory(PLAN.final_dir("merge")),
    log:
        "logs/merge_final/merge_final.log",
    benchmark:
        "benchmarks/merge_final/merge_final.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        mem_mb=64000,  # the base model unquantized on the CPU (float32: 4 bytes per parameter)
        runtime=30,
        cpus_per_task=lambda wildcards, threads: threads,
    params:
        base_model=as_json(config["base_model"]),
        merge=as_json(config["final"]["merge"]),
        name=PLAN.final_name("merge"),
        adapters=lambda wildcards, input: pairs(SHARDS, input.adapters),
    shell:
        "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        "complementarity merge"
        " --base {input.base:q}"
        " --base-model {params.base_model:q}"
        " --adapter {params.adapters}"
        " --selection {input.selection:q}"
        " --settings {params.merge:q}"
        " --name {params.name}"
        " --out {output.adapter:q}"
        " > {log:q} 2>&1"
