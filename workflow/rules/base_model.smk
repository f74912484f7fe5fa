"""Base model: the model M every fine-tune starts from.

REQUIRED INPUTS: prepared domain data (results/data/domains/), or the shards (tiny model
pre-trained on them), and the shard check.
OUTPUTS: results/base_model/ (base_model.json manifest; the weights too for the tiny model and for a
GGUF source, expanded into a plain model folder).
"""

# A hub model is fetched on the submit node, where the hub is reachable (compute nodes often are
# not), into the hub cache; the GPU jobs then load it from there. The tiny model is built by a
# (CPU-only) cluster job.
if config["base_model"]["source"] != "tiny":

    localrules:
        build_base_model,


rule build_base_model:
    """Build and pre-train the tiny model, expand a GGUF, fetch the hub model into the cache, or record a local folder."""
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
        "complementarity base_model"
        " --base-model {params.base_model:q}"
        " --train {input.train:q}"
        " --max-seq-len {params.max_seq_len}"
        " --out {output.base:q}"
        " > {log:q} 2>&1"
