"""Evaluation: baselines, task accuracy on the test sets, the results table, the report and figures.

REQUIRED INPUTS: results/base_model/, results/final/, shard data, prepared test sets.
OUTPUTS: results/baselines/all_data/, results/baselines/random_k/seed{seed}/{selection.json,adapter/},
results/evaluation/{model}.json, results/evaluation.tsv, results/report.md, results/figures/*.{png,svg}.
"""


rule finetune_all_data:
    """Baseline: fine-tune on the union of all shards."""
    input:
        base="results/base_model",
        shards=expand("results/data/shards/{shard}.jsonl", shard=SHARDS),
        shards_checked=ancient("results/data/shards/checked.tsv"),
    output:
        adapter=directory("results/baselines/all_data"),
    log:
        "logs/finetune_all_data/finetune_all_data.log",
    benchmark:
        "benchmarks/finetune_all_data/finetune_all_data.tsv"
    priority: 1  # the longest fine-tune: start it as soon as the base model is ready
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=480,
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
        " --train {input.shards:q}"
        " --name all_data"
        " --checkpoint-dir results/checkpoints/all_data"
        " --batch-divisor {resources.batch_divisor}"
        " --out {output.adapter:q}"
        " > {log:q} 2>&1"


rule select_random:
    """Baseline: k shards chosen at random with a seed."""
    input:
        unpack(get_random_selection_input),  # issue 15: threshold rule: k from the selection
    output:
        selection="results/baselines/random_k/seed{seed}/selection.json",
    log:
        "logs/select_random/seed{seed}.log",
    conda:
        "../../envs/data.yaml"
    params:
        k=config["selection"]["k"],
        shards=" ".join(SHARDS),
    shell:
        "complementarity random-selection"
        " --shards {params.shards}"
        " --k {params.k}"
        " --seed {wildcards.seed}"
        " --out {output.selection:q}"
        # issue 15: with selection.method threshold, as many shards as the selection chose
        + (" --k-from {input.selection:q}" if RANDOM_K_FROM_SELECTION else "")
        + " > {log:q} 2>&1"


rule finetune_random:
    """Baseline: fine-tune on the union of k random shards."""
    input:
        base="results/base_model",
        selection="results/baselines/random_k/seed{seed}/selection.json",
        shards=get_random_shards,
        shards_checked=ancient("results/data/shards/checked.tsv"),
    output:
        adapter=directory("results/baselines/random_k/seed{seed}/adapter"),
    log:
        "logs/finetune_random/seed{seed}.log",
    benchmark:
        "benchmarks/finetune_random/seed{seed}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=480,
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
        " --train {input.shards:q}"
        " --selection {input.selection:q}"
        " --name random_k_seed{wildcards.seed}"
        " --checkpoint-dir results/checkpoints/random_k_seed{wildcards.seed}"
        " --batch-divisor {resources.batch_divisor}"
        " --out {output.adapter:q}"
        " > {log:q} 2>&1"


rule evaluate_model:
    """Task accuracy of one model on every domain's test set (generation, or option log-likelihood)."""
    input:
        unpack(get_eval_adapter),
        base="results/base_model",
        test=expand("results/data/domains/{domain}/test.jsonl", domain=TESTED),
        train=expand("results/data/domains/{domain}/train.jsonl", domain=TESTED),
    output:
        result="results/evaluation/{model}.json",
    log:
        "logs/evaluate_model/{model}.log",
    benchmark:
        "benchmarks/evaluate_model/{model}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=120,
        cpus_per_task=lambda wildcards, threads: threads,
    params:
        base_model=as_json(config["base_model"]),
        settings=eval_settings(),
        evaluators=as_json(
            {d: e for d, e in config_evaluators(config).items() if d in TESTED}
        ),
        adapter=lambda wildcards, input: (
            f"--adapter {input.adapter}" if "adapter" in input.keys() else ""
        ),
        test=lambda wildcards, input: " ".join(
            f"{d}={f}" for d, f in zip(TESTED, input.test)
        ),
        few_shot=lambda wildcards, input: " ".join(
            f"{d}={f}" for d, f in zip(TESTED, input.train)
        ),
    shell:
        "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        "complementarity evaluate"
        " --base {input.base:q}"
        " --base-model {params.base_model:q}"
        " {params.adapter}"
        " --name {wildcards.model}"
        " --test {params.test}"
        " --evaluators {params.evaluators:q}"
        " --few-shot {params.few_shot}"
        " --settings {params.settings:q}"
        " --out {output.result:q}"
        " > {log:q} 2>&1"


rule report:
    """evaluation.tsv (score, n, Wilson CI, training fraction per model and domain), report.md, figures."""
    input:
        evaluations=expand("results/evaluation/{model}.json", model=eval_models()),
        adapters=get_adapter_dirs()[1],
        complementarity="results/complementarity.tsv",
        selection="results/selection.json",
        shards_table="results/data/shards/checked.tsv",
    output:
        table=report(
            "results/evaluation.tsv",
            caption="../report/evaluation.rst",
            category="Evaluation",
        ),
        report="results/report.md",
        heatmap=report(
            "results/figures/complementarity_heatmap.png",
            caption="../report/heatmap.rst",
            category="Figures",
        ),
        accuracy=report(
            "results/figures/accuracy.png",
            caption="../report/accuracy.rst",
            category="Figures",
        ),
    log:
        "logs/report/report.log",
    conda:
        "../../envs/data.yaml"
    params:
        names=" ".join(get_adapter_dirs()[0]),
        metrics=lambda wildcards, input: " ".join(
            f"{m}={p}/metrics.json"
            for m, p in zip(get_adapter_dirs()[0], input.adapters)
        ),
        confidence=EVAL["confidence"],
        resamples=EVAL["bootstrap_resamples"],
        tiny="--tiny" if config["base_model"]["source"] == "tiny" else "",
        untested=" ".join(d for d in DOMAINS if d not in TESTED),
    shell:
        "complementarity report"
        " --evaluations {input.evaluations:q}"
        " --adapter-metrics {params.metrics}"
        " --shards-table {input.shards_table:q}"
        " --complementarity {input.complementarity:q}"
        " --selection {input.selection:q}"
        " --confidence {params.confidence}"
        " --resamples {params.resamples}"
        " {params.tiny}"
        " --untested {params.untested}"
        " --table {output.table:q}"
        " --report {output.report:q}"
        " --figures results/figures"
        " > {log:q} 2>&1"
