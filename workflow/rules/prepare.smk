"""Data: prepare every domain, then form the candidate shards.

REQUIRED INPUTS: the domains' train/validation/test sources (config `domains`); for strategy files,
the candidate shard files (config `sharding.files`).
OUTPUTS: results/data/domains/{domain}/{train,validation,test}.jsonl, results/data/domains/report.json,
results/data/shards/{shard}.jsonl, results/data/shards/checked.tsv (one row per shard: records, domains).
"""


rule prepare_data:
    """Load, normalize and de-duplicate every domain, carve validation sets, check leakage."""
    input:
        sources=get_domain_sources,
    output:
        data=expand(
            "results/data/domains/{domain}/{split}.jsonl", domain=DOMAINS, split=SPLITS
        ),
        report="results/data/domains/report.json",
    log:
        "logs/prepare_data/prepare_data.log",
    benchmark:
        "benchmarks/prepare_data/prepare_data.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        domains=as_json(config["domains"]),
        data=as_json(config["data"]),
    shell:
        "complementarity prepare-data"
        " --domains {params.domains:q}"
        " --data {params.data:q}"
        " --out-dir results/data/domains"
        " > {log:q} 2>&1"


if STRATEGY == "random":

    localrules:
        make_shards,

    rule make_shards:
        """Pool all domains' training data, shuffle, split into N disjoint shards (the paper)."""
        input:
            train=get_prepared("train"),
        output:
            shards=expand("results/data/shards/{shard}.jsonl", shard=SHARDS),
        log:
            "logs/make_shards/make_shards.log",
        benchmark:
            "benchmarks/make_shards/make_shards.tsv"
        conda:
            "../../envs/data.yaml"
        params:
            seed=config["sharding"]["seed"],
        shell:
            "complementarity make-shards"
            " --train {input.train:q}"
            " --seed {params.seed}"
            " --out {output.shards:q}"
            " > {log:q} 2>&1"

else:

    localrules:
        make_shard,

    rule make_shard:
        """Normalize one candidate shard file, drop duplicates, check it against validation/test prompts."""
        input:
            source=get_shard_source,
            held_out=get_prepared("validation") + get_prepared("test"),
        output:
            shard="results/data/shards/{shard}.jsonl",
            report="results/data/shards/{shard}.report.json",
        log:
            "logs/make_shard/{shard}.log",
        benchmark:
            "benchmarks/make_shard/{shard}.tsv"
        conda:
            "../../envs/data.yaml"
        params:
            leakage=config["data"]["leakage"],
        shell:
            "complementarity make-shard"
            " --input {input.source:q}"
            " --shard {wildcards.shard}"
            " --held-out {input.held_out:q}"
            " --leakage {params.leakage}"
            " --out {output.shard:q}"
            " > {log:q} 2>&1"


rule check_shards:
    """Barrier: every shard exists and is non-empty before any training starts; a table of their sizes."""
    input:
        shards=expand("results/data/shards/{shard}.jsonl", shard=SHARDS),
    output:
        table="results/data/shards/checked.tsv",
    log:
        "logs/check_shards/check_shards.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "complementarity check-shards"
        " --shards {input.shards:q}"
        " --out {output.table:q}"
        " > {log:q} 2>&1"
