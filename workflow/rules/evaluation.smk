"""Evaluation: task accuracy of each model on the test sets (generation, or option log-likelihood).

Models that become ready together (random-k baselines; shard, study and rule models) are evaluated
in groups of evaluation.group_size per job (evaluate_group: one process, one import), which writes
each model's JSON into results/evaluation/groups/{eval_group}/; copy_evaluation puts it at
results/evaluation/{model}.json like evaluate_model's. A changed model re-evaluates its group.

REQUIRED INPUTS: results/base_model/, each evaluated model's adapter, prepared test sets (and the
training sets, as few-shot pools).
OUTPUTS: results/evaluation/{model}.json (model names: complementarity.plan),
results/evaluation/groups/{eval_group}/ (plan.Plan.eval_groups).
"""


rule evaluate_model:
    """Task accuracy of one model on every domain's test set (generation, or option log-likelihood)."""
    input:
        unpack(get_eval_adapter),
        base="results/base_model",
        test=get_prepared("test", TESTED),
        train=get_prepared("train", TESTED),
    output:
        result=evaluation_output(grouped=False),
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
        settings=PLAN.evaluation_params(),
        evaluators=as_json(PLAN.evaluators()),
        adapter=lambda wildcards, input: (
            f"--adapter {input.adapter}" if "adapter" in input.keys() else ""
        ),
        test=lambda wildcards, input: pairs(TESTED, input.test),
        few_shot=lambda wildcards, input: pairs(TESTED, input.train),
    shell:
        "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        "complementarity evaluation"
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


if PLAN.eval_groups:

    localrules:
        copy_evaluation,

    rule evaluate_group:
        """evaluate_model for several models in one job (one start, one import of torch/transformers);
        each is evaluated as its own job would (the base loaded afresh)."""
        input:
            base="results/base_model",
            adapters=get_eval_group_adapters,
            test=get_prepared("test", TESTED),
            train=get_prepared("train", TESTED),
        output:
            group=directory("results/evaluation/groups/{eval_group}"),
        log:
            "logs/evaluate_group/{eval_group}.log",
        benchmark:
            "benchmarks/evaluate_group/{eval_group}.tsv"
        conda:
            "../../envs/train.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=16000,
            runtime=120 * config["evaluation"]["group_size"],  # minutes: 120 per model
            cpus_per_task=lambda wildcards, threads: threads,
        params:
            base_model=as_json(config["base_model"]),
            settings=PLAN.evaluation_params(),
            evaluators=as_json(PLAN.evaluators()),
            models=eval_group_args,
            test=lambda wildcards, input: pairs(TESTED, input.test),
            few_shot=lambda wildcards, input: pairs(TESTED, input.train),
        shell:
            "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
            "complementarity evaluation"
            " --base {input.base:q}"
            " --base-model {params.base_model:q}"
            " --models {params.models}"
            " --test {params.test}"
            " --evaluators {params.evaluators:q}"
            " --few-shot {params.few_shot}"
            " --settings {params.settings:q}"
            " --out-dir {output.group:q}"
            " > {log:q} 2>&1"

    rule copy_evaluation:
        """One model's results from its group's folder, at the path evaluate_model writes."""
        input:
            group=get_eval_group_dir,
        output:
            result=evaluation_output(grouped=True),
        log:
            "logs/copy_evaluation/{model}.log",
        conda:
            "../../envs/data.yaml"
        shell:
            "cp {input.group:q}/{wildcards.model:q}.json {output.result:q} > {log:q} 2>&1"
