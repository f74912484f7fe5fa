"""Shards: form the N candidate shards, then check them all before any training starts.

REQUIRED INPUTS: prepared domain data; for strategy files, the candidate shard files (config
`sharding.files`).
OUTPUTS: results/data/shards/{shard}.jsonl, results/data/shards/checked.tsv (one row per shard:
records, domains).
"""

if STRATEGY == "random":

    localrules:
        make_shards,

    rule make_shards:
        """Pool all domains' training data, shuffle, split into N disjoint shards (the paper)."""
        input:
            train=get_prepared("train"),
        output:
            shards=get_shard_files(),
        log:
            "logs/make_shards/make_shards.log",
        benchmark:
            "benchmarks/make_shards/make_shards.tsv"
        conda:
            "../../envs/data.yaml"
        params:
            seed=config["sharding"]["seed"],
        shell:
            "complementarity shards split"
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
            validation=get_prepared("validation"),
            test=get_prepared("test"),
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
            "complementarity shards file"
            " --input {input.source:q}"
            " --shard {wildcards.shard}"
            " --validation {input.validation:q}"
            " --test {input.test:q}"
            " --leakage {params.leakage}"
            " --out {output.shard:q}"
            " > {log:q} 2>&1"


rule check_shards:
    """Barrier: every shard exists and is non-empty before any training starts; a table of their sizes."""
    input:
        shards=get_shard_files(),
    output:
        table="results/data/shards/checked.tsv",
    log:
        "logs/check_shards/check_shards.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "complementarity shards check"
        " --shards {input.shards:q}"
        " --out {output.table:q}"
        " > {log:q} 2>&1"
