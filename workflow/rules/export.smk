"""Export: the final model with its adapter merged into the base weights, in plain transformers format
with the tokenizer (for vLLM, lm-evaluation-harness, ``from_pretrained``). Not in the default target:
`snakemake --profile profiles/local export`.

REQUIRED INPUTS: results/base_model/, results/final/.
OUTPUTS: results/export/merged/ (config.json, safetensors weights, tokenizer, export.json).
"""


rule export_merged:
    """The final model with its adapter merged into the base weights: plain transformers format + tokenizer."""
    input:
        base="results/base_model",
        adapter="results/final",
    output:
        model=directory("results/export/merged"),
    log:
        "logs/export_merged/export_merged.log",
    benchmark:
        "benchmarks/export_merged/export_merged.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=0,  # an unquantized base is merged on the CPU
        mem_mb=64000,
        runtime=60,
        cpus_per_task=lambda wildcards, threads: threads,
    params:
        base_model=as_json(config["base_model"]),
    shell:
        "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
        "complementarity export --merged"
        " --base {input.base:q}"
        " --base-model {params.base_model:q}"
        " --adapter {input.adapter:q}"
        " --out {output.model:q}"
        " > {log:q} 2>&1"


# A 4-bit base is dequantized on a GPU: the same job asking for one, under its own name so that the
# SLURM profile sends it to the GPU partition (and export_merged to the CPU one). Both rules exist;
# the base model's quantization decides which one makes results/export/merged.
use rule export_merged as export_merged_gpu with:
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=60,
        cpus_per_task=lambda wildcards, threads: threads,


if config["base_model"]["quantization"] == "4bit":

    ruleorder: export_merged_gpu > export_merged

else:

    ruleorder: export_merged > export_merged_gpu


rule export:
    """Target: `snakemake export` writes results/export/merged/."""
    input:
        "results/export/merged",
