"""Config validation and input functions shared by every rule file.

The config is validated against workflow/schemas/config.schema.yaml (defaults filled in) plus the
checks a schema cannot express, before any job is scheduled. Rules receive only the config slice they
depend on through ``params``, so changing one setting reruns exactly the jobs it affects.
"""

import json
from pathlib import Path

from complementarity.config import shard_files, shard_ids, validate_config
from complementarity.errors import ConfigError

try:
    validate_config(config, base_dir=Path.cwd())
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None

DOMAINS = list(config["domains"])
SPLITS = ["train", "validation", "test"]
SHARDS = shard_ids(config)
STRATEGY = config["sharding"]["strategy"]


wildcard_constraints:
    shard="|".join(map(re.escape, SHARDS)),
    domain="|".join(map(re.escape, DOMAINS)),


def as_json(value):
    """A config slice as a stable JSON string for ``params`` (compared between runs by Snakemake)."""
    return json.dumps(value, sort_keys=True)


def source_files(spec):
    """Local files named by a source spec (a hub spec names none)."""
    from complementarity.config import local_paths

    return local_paths(spec)


def get_domain_sources(wildcards):
    """Every local file any domain reads (the prepare_data job depends on all of them)."""
    return sorted(
        {
            f
            for d in config["domains"].values()
            for s in SPLITS
            for f in source_files(d.get(s))
        }
    )


def get_prepared(split):
    return expand(
        "results/data/domains/{domain}/{split}.jsonl", domain=DOMAINS, split=split
    )


def get_shard_source(wildcards):
    """The candidate file of one shard (strategy files)."""
    return shard_files(config)[wildcards.shard]


def get_pretrain_files(wildcards):
    """Pre-training text of the tiny base model: domain training data, or the shards."""
    tiny = config["base_model"]["tiny"]
    if config["base_model"]["source"] != "tiny":
        return []
    corpus = tiny["pretrain_on"]
    if corpus == "auto":
        has_train = any(d.get("train") is not None for d in config["domains"].values())
        corpus = "domains" if has_train else "shards"
    if corpus == "domains":
        return get_prepared("train")
    return expand("results/data/shards/{shard}.jsonl", shard=SHARDS)


def validation_args(wildcards, input):
    """``DOMAIN=FILE`` pairs for the score command."""
    return " ".join(f"{d}={f}" for d, f in zip(DOMAINS, input.validation))


def get_batch_divisor(wildcards, attempt):
    """Retries (snakemake --retries) halve the micro-batch each time; the effective batch is kept.

    Fine-tuning resumes from its last checkpoint, so a retry after running out of memory loses little.
    """
    return 2 ** (attempt - 1)
