"""The base model M and its validation losses L_M(V_j).

REQUIRED INPUTS: prepared domain data (results/data/domains/).
OUTPUTS: results/base_model/ (base_model.json manifest; the weights too for the tiny model),
results/scores/base.json (L_M on every domain's validation set, computed once).
"""

# A hub model is fetched on the submit node, where the hub is reachable (compute nodes often are
# not), into the hub cache; the GPU jobs then load it from there. The tiny model is built by a
# (CPU-only) cluster job.
if config["base_model"]["source"] != "tiny":

    localrules:
        build_base_model,


rule build_base_model:
    """Build and pre-train the tiny model, or fetch the hub model into the cache, or record a local folder."""
    input:
        train=get_pretrain_files,
        shards_checked=ancient("results/data/shards/checked.tsv"),
    output:
        base=directory("results/base_model"),
    log:
        "logs/build_base_model/build_base_model.log",
    benchmark:
        "benchmarks/build_base_model/build_base_model.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
        cpus_per_task=lambda wildcards, threads: threads,
    params:
        base_model=as_json(config["base_model"]),
        max_seq_len=config["finetune"]["max_seq_len"],
    shell:
        "complementarity build-base-model"
        " --base-model {params.base_model:q}"
        " --train {input.train:q}"
        " --max-seq-len {params.max_seq_len}"
        " --out {output.base:q}"
        " > {log:q} 2>&1"


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
        batch_size=config["scoring"]["batch_size"],
        validation=validation_args,
    shell:
        "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        "complementarity score"
        " --base {input.base:q}"
        " --base-model {params.base_model:q}"
        " --validation {params.validation}"
        " --max-seq-len {params.max_seq_len}"
        " --batch-size {params.batch_size}"
        " --out {output.scores:q}"
        " > {log:q} 2>&1"
