"""Selection: the Complementarity table, the top-k shards, and the random-k baseline's draws.

REQUIRED INPUTS: results/scores/base.json, results/scores/shards-*.json.
OUTPUTS: results/complementarity.tsv, results/scores/losses.tsv, results/selection.json,
results/baselines/random_k/seed{seed}/selection.json.
"""


rule gather_scores:
    """C(M_i, V_j) for every shard and domain, and the mean over domains; best shard first."""
    input:
        base="results/scores/base.json",
        shards=group_scores(PLAN.shard_groups),
    output:
        table=report(
            "results/complementarity.tsv",
            caption="../report/complementarity.rst",
            category="Complementarity",
        ),
        losses="results/scores/losses.tsv",
    log:
        "logs/gather_scores/gather_scores.log",
    conda:
        "../../envs/data.yaml"
    params:
        metric=config["selection"]["metric"],
        weights=as_json(config["selection"]["weights"]),
    shell:
        "complementarity selection gather"
        " --base-scores {input.base:q}"
        " --shard-scores {input.shards:q}"
        " --metric {params.metric}"
        " --weights {params.weights:q}"
        " --out {output.table:q}"
        " --losses {output.losses:q}"
        " > {log:q} 2>&1"


rule select_topk:
    """Keep the k shards with the highest mean Complementarity (ties: smaller shard id)."""
    input:
        table="results/complementarity.tsv",
    output:
        selection="results/selection.json",
    log:
        "logs/select_topk/select_topk.log",
    conda:
        "../../envs/data.yaml"
    params:
        k=config["selection"]["k"],
        metric=config["selection"]["metric"],
    shell:
        "complementarity selection topk"
        " --table {input.table:q}"
        " --k {params.k}"
        " --metric {params.metric}"
        " --out {output.selection:q}"
        " > {log:q} 2>&1"


rule select_random:
    """Baseline: k shards chosen at random with a seed (drawn once, by the plan, when the DAG is built)."""
    output:
        selection="results/baselines/random_k/seed{seed}/selection.json",
    log:
        "logs/select_random/seed{seed}.log",
    conda:
        "../../envs/data.yaml"
    params:
        selected=lambda wildcards: " ".join(PLAN.random_draws[int(wildcards.seed)]),
    shell:
        "complementarity selection random"
        " --selected {params.selected}"
        " --seed {wildcards.seed}"
        " --out {output.selection:q}"
        " > {log:q} 2>&1"
