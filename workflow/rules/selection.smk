"""Selection: the Complementarity table with its uncertainty, the shards a rule selects, and the
random-k baseline's draws.

REQUIRED INPUTS: results/scores/base.json, results/scores/shards-*.json (selection.seeds > 1: the
extra seeds' results/scores/seed<s>-*.json, from the study's finetune_shard_seed jobs).
OUTPUTS: results/complementarity.tsv, results/scores/losses.tsv, results/scores/bootstrap.npz,
results/selection.json, results/baselines/random_k/seed{seed}/selection.json.
"""


rule gather_scores:
    """C(M_i, V_j) for every shard and domain, the mean over domains (over seeds), intervals, P(top-k)."""
    input:
        base="results/scores/base.json",
        shards=group_scores(PLAN.shard_groups),
        seed_shards=selection_seed_scores(),
    output:
        table=report(
            "results/complementarity.tsv",
            caption="../report/complementarity.rst",
            category="Complementarity",
        ),
        losses="results/scores/losses.tsv",
        bootstrap="results/scores/bootstrap.npz",
    log:
        "logs/gather_scores/gather_scores.log",
    conda:
        "../../envs/data.yaml"
    params:
        metric=config["selection"]["metric"],
        weights=as_json(config["selection"]["weights"]),
        k=config["selection"]["k"],
        resamples=config["selection"]["bootstrap"]["resamples"],
        confidence=config["selection"]["bootstrap"]["confidence"],
        bootstrap_seed=config["selection"]["bootstrap"]["seed"],
        seed_scores=selection_seed_args,
    shell:
        "complementarity selection gather"
        " --base-scores {input.base:q}"
        " --shard-scores {input.shards:q}"
        " {params.seed_scores}"
        " --metric {params.metric}"
        " --weights {params.weights:q}"
        " --k {params.k}"
        " --resamples {params.resamples}"
        " --confidence {params.confidence}"
        " --bootstrap-seed {params.bootstrap_seed}"
        " --bootstrap {output.bootstrap:q}"
        " --out {output.table:q}"
        " --losses {output.losses:q}"
        " > {log:q} 2>&1"


rule select_topk:
    """Choose shards with the rule selection.method (default topk: the k best means; ties: smaller id)."""
    input:
        table="results/complementarity.tsv",
        bootstrap="results/scores/bootstrap.npz",
    output:
        selection="results/selection.json",
    log:
        "logs/select_topk/select_topk.log",
    conda:
        "../../envs/data.yaml"
    params:
        k=config["selection"]["k"],
        metric=config["selection"]["metric"],
        method=config["selection"]["method"],
        threshold=config["selection"]["threshold"],
        weights=as_json(config["selection"]["weights"]),
        confidence=config["selection"]["bootstrap"]["confidence"],
    shell:
        "complementarity selection {params.method}"
        " --table {input.table:q}"
        " --k {params.k}"
        " --metric {params.metric}"
        " --threshold {params.threshold}"
        " --weights {params.weights:q}"
        " --bootstrap {input.bootstrap:q}"
        " --confidence {params.confidence}"
        " --out {output.selection:q}"
        " > {log:q} 2>&1"


rule select_random:
    """Baseline: k shards chosen at random with a seed (drawn once, by the plan, when the DAG is built;
    with selection.method threshold, drawn here, as many as the selection chose)."""
    input:
        unpack(get_random_selection_input),
    output:
        selection="results/baselines/random_k/seed{seed}/selection.json",
    log:
        "logs/select_random/seed{seed}.log",
    conda:
        "../../envs/data.yaml"
    params:
        selected=lambda wildcards: " ".join(
            PLAN.random_draws.get(int(wildcards.seed), [])
        ),
    shell:
        "complementarity selection random"
        # rule threshold: k follows from the selection, so the job draws; otherwise the plan drew
        # (the default's command is unchanged, so upgrading reruns no random-k baseline)
        + (
            f" --k-from {{input.selection:q}} --shards {' '.join(SHARDS)}"
            if PLAN.random_k_from_selection
            else " --selected {params.selected}"
        )
        + " --seed {wildcards.seed}"
        " --out {output.selection:q}"
        " > {log:q} 2>&1"
