"""Prepare: load, normalize and de-duplicate every domain; carve validation sets; check leakage.

REQUIRED INPUTS: the domains' train/validation/test sources (config `domains`).
OUTPUTS: results/data/domains/{domain}/{train,validation,test}.jsonl, results/data/domains/report.json.
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
        "complementarity prepare"
        " --domains {params.domains:q}"
        " --data {params.data:q}"
        " --out-dir results/data/domains"
        " > {log:q} 2>&1"
