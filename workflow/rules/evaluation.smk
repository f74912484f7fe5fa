"""Evaluation: task accuracy of each model on the test sets (generation, or option log-likelihood).

REQUIRED INPUTS: results/base_model/, each evaluated model's adapter, prepared test sets (and the
training sets, as few-shot pools).
OUTPUTS: results/evaluation/{model}.json (model names: complementarity.plan).
"""


rule evaluate_model:
    """Task accuracy of one model on every domain's test set (generation, or option log-likelihood)."""
    input:
        unpack(get_eval_adapter),
        base="results/base_model",
        test=get_prepared("test", TESTED),
        train=get_prepared("train", TESTED),
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
