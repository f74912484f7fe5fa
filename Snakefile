# Complementarity data selection: fine-tune a base model on each of N candidate shards, score every
# shard model on every domain's validation set, keep the k best shards, fine-tune on their union.
#
#   snakemake --profile profiles/local                          # embedded tiny default, CPU
#   snakemake --profile profiles/local --configfile config/paper.yaml -n    # paper setup, dry run
#   snakemake --profile profiles/local study                    # does Complementarity predict accuracy?
from snakemake.utils import min_version

min_version("9.0")


# The embedded default, unless --configfile names another config: Snakemake would otherwise
# deep-merge the two (the paper run would inherit the demo's domains and shard files).
if not workflow.overwrite_configfiles:
    # A YAML syntax error names file:line (Snakemake's own message does not).
    from complementarity.config import check_yaml_syntax

    check_yaml_syntax("config/config.yaml")

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# One rule file per stage of the method, in its order; each has the name of its package module and
# its CLI subcommand (complementarity.<stage>, `complementarity <stage>`). ARCHITECTURE.md maps them.
include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/base_model.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/scoring.smk"
include: "workflow/rules/selection.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/cost.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/study.smk"


localrules:
    all,
    prepare_data,
    check_shards,
    gather_scores,
    select_topk,
    select_rule,
    select_random,
    report,
    study,
    study_data,
    analyze_study,
    cost_table,
    export,


rule all:
    default_target: True
    input:
        "results/complementarity.tsv",
        "results/selection.json",
        "results/final",
        "results/cost.tsv",
        "results/report.md" if EVALUATE else [],
