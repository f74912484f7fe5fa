"""Scoring: mean NLL per response token on every domain's validation set, of the base model
(L_M, computed once) and of every adapter (L_{M_i}), in jobs of scoring.group_size adapters each
that load the base model once. score_group is score_base with adapters (`use rule ... with:`).

REQUIRED INPUTS: results/base_model/, the adapters of each group, validation sets.
OUTPUTS: results/scores/base.json, results/scores/{group}.json (groups shards-1, shards-2, ... hold
the shard models; study-* and seed*-* the study's models).
"""


rule score_base:
    """Mean NLL per response token of the base model on every domain's validation set."""
    input:
        base="results/base_model",
        validation=get_prepared("validation"),
    output:
        scores="results/scores/base.json",
    log:
        "logs/score_base/score_base.log",
    benchmark:
        "benchmarks/score_base/score_base.tsv"
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
        batch_size=PLAN.scoring_params().batch_size,
        validation=validation_args,
        adapters="",
    shell:
        "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        "complementarity scoring"
        " --base {input.base:q}"
        " --base-model {params.base_model:q}"
        " --validation {params.validation}"
        " {params.adapters}"
        " --max-seq-len {params.max_seq_len}"
        " --batch-size {params.batch_size}"
        " --out {output.scores:q}"
        " > {log:q} 2>&1"


# Each adapter of a group on every domain's validation set: the base model is loaded once per job
# and the group's adapters are swapped in turn.
use rule score_base as score_group with:
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
    params:
        adapters=group_adapter_args,
