"""Tests for :mod:`complementarity.config` and its schema (``schemas/config.schema.yaml``)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from complementarity.config import load_schema, load_yaml, shard_ids, validate_config
from complementarity.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, n: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f'{{"prompt": "p{i}", "response": "r{i}"}}\n' for i in range(n)), encoding="utf-8")
    return path


def minimal(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """A config with one domain ``a`` whose train file exists in tmp_path, plus ``sections``."""
    write_jsonl(tmp_path / "a.jsonl")
    return {"domains": {"a": {"train": "a.jsonl"}}, **sections}


def config_error(config: dict[str, Any], base_dir: Path) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config, base_dir)
    return str(info.value)


def assert_mentions(msg: str, *needles: str) -> None:
    missing = [n for n in needles if n not in msg]
    assert not missing, f"{missing} not in error message: {msg}"


# ------------------------------------------------------------------------------------------------
# Defaults
# ------------------------------------------------------------------------------------------------


def test_validate_fills_defaults(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl")
    config = {"domains": {"a": {"train": "train.jsonl"}}}
    out = validate_config(config, base_dir=tmp_path)
    assert out is config  # filled in place
    assert out["selection"]["k"] == 2
    assert out["selection"]["metric"] == "relative"
    assert out["selection"]["weights"] == {}
    assert out["finetune"]["lora_r"] == 8
    assert out["finetune"]["target_modules"] == "all-linear"
    assert out["sharding"] == {"strategy": "random", "n_shards": 10, "files": [], "seed": 0}
    assert out["base_model"]["source"] == "tiny"
    assert out["base_model"]["tiny"]["hidden_size"] == 128  # nested object defaults too
    assert out["data"]["leakage"] == "error"
    assert out["domains"]["a"] == {"train": "train.jsonl", "validation": None, "test": None, "evaluator": None}


def test_defaults_are_copies_not_shared(tmp_path: Path) -> None:
    first = validate_config(minimal(tmp_path), tmp_path)
    first["selection"]["weights"]["a"] = 1.0
    second = validate_config(minimal(tmp_path), tmp_path)
    assert second["selection"]["weights"] == {}
    assert load_schema()["properties"]["selection"]["properties"]["weights"]["default"] == {}


def test_given_values_are_kept(tmp_path: Path) -> None:
    out = validate_config(minimal(tmp_path, selection={"k": 5, "metric": "absolute"}), tmp_path)
    assert out["selection"]["k"] == 5
    assert out["selection"]["metric"] == "absolute"
    assert out["selection"]["weights"] == {}


# ------------------------------------------------------------------------------------------------
# Errors name the key and the value
# ------------------------------------------------------------------------------------------------


def test_unknown_top_level_key_lists_allowed_keys(tmp_path: Path) -> None:
    msg = config_error(minimal(tmp_path, selektion={"k": 1}), tmp_path)
    assert_mentions(msg, "selektion", "allowed keys")
    for key in ("base_model", "domains", "data", "sharding", "selection", "finetune", "scoring"):
        assert key in msg.split("allowed keys", 1)[1], f"{key} missing from allowed keys in: {msg}"


def test_unknown_nested_key(tmp_path: Path) -> None:
    msg = config_error(minimal(tmp_path, finetune={"lora_rank": 4}), tmp_path)
    assert_mentions(msg, "finetune", "lora_rank", "lora_r")


def test_bad_enum_names_key_and_value(tmp_path: Path) -> None:
    msg = config_error(minimal(tmp_path, base_model={"quantization": "3bit"}), tmp_path)
    assert_mentions(msg, "base_model.quantization", "3bit", "4bit", "8bit")


def test_k_larger_than_n(tmp_path: Path) -> None:
    msg = config_error(minimal(tmp_path, selection={"k": 11}, sharding={"n_shards": 10}), tmp_path)
    assert_mentions(msg, "selection.k", "k=11", "N=10")


def test_k_equal_to_n_is_fine(tmp_path: Path) -> None:
    out = validate_config(minimal(tmp_path, selection={"k": 10}, sharding={"n_shards": 10}), tmp_path)
    assert out["selection"]["k"] == 10


def test_k_below_one(tmp_path: Path) -> None:
    msg = config_error(minimal(tmp_path, selection={"k": 0}), tmp_path)
    assert_mentions(msg, "selection.k", "0", "minimum")


def test_missing_train_file_names_path(tmp_path: Path) -> None:
    config = {"domains": {"a": {"train": "data/nope.jsonl"}}}
    msg = config_error(config, tmp_path)
    assert_mentions(msg, "domains.a.train", "data/nope.jsonl", str(tmp_path))


def test_missing_file_in_mapping_spec(tmp_path: Path) -> None:
    config = minimal(tmp_path)
    config["domains"]["a"]["test"] = {"path": "missing-test.jsonl"}
    msg = config_error(config, tmp_path)
    assert_mentions(msg, "domains.a.test", "missing-test.jsonl")


def test_duplicate_shard_ids_name_both_files(tmp_path: Path) -> None:
    one = write_jsonl(tmp_path / "x" / "shard.jsonl")
    two = write_jsonl(tmp_path / "y" / "shard.jsonl")
    assert one.is_file() and two.is_file()
    config = minimal(tmp_path, sharding={"strategy": "files", "files": ["x/shard.jsonl", "y/shard.jsonl"]})
    config["selection"] = {"k": 1}
    msg = config_error(config, tmp_path)
    assert_mentions(msg, "sharding.files", "duplicate shard id 'shard'", "x/shard.jsonl", "y/shard.jsonl")


def test_unknown_domain_in_weights(tmp_path: Path) -> None:
    msg = config_error(minimal(tmp_path, selection={"weights": {"a": 1.0, "mystery": 2.0}}), tmp_path)
    assert_mentions(msg, "selection.weights", "mystery", "known domains: a")


def test_all_zero_weights(tmp_path: Path) -> None:
    msg = config_error(minimal(tmp_path, selection={"weights": {"a": 0}}), tmp_path)
    assert_mentions(msg, "selection.weights", "all weights are 0")


def test_bad_domain_name_pattern(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl")
    msg = config_error({"domains": {"bad name!": {"train": "a.jsonl"}}}, tmp_path)
    assert_mentions(msg, "domains", "bad name!")


def test_random_strategy_needs_train_in_every_domain(tmp_path: Path) -> None:
    config = minimal(tmp_path)
    write_jsonl(tmp_path / "b_val.jsonl")
    config["domains"]["b"] = {"validation": "b_val.jsonl"}
    msg = config_error(config, tmp_path)
    assert_mentions(msg, "domains.b.train", "strategy random", "sharding.strategy: files")
    assert "domains.a" not in msg


def test_domain_without_any_data(tmp_path: Path) -> None:
    config = minimal(tmp_path, sharding={"strategy": "files", "files": ["a.jsonl"]}, selection={"k": 1})
    config["domains"]["empty"] = {}
    msg = config_error(config, tmp_path)
    assert_mentions(msg, "domains.empty", "validation", "train")


def test_files_strategy_needs_files(tmp_path: Path) -> None:
    msg = config_error(minimal(tmp_path, sharding={"strategy": "files"}), tmp_path)
    assert_mentions(msg, "sharding.files", "at least one")


def test_files_strategy_missing_shard_file(tmp_path: Path) -> None:
    config = minimal(tmp_path, sharding={"strategy": "files", "files": ["shards/gone.jsonl"]}, selection={"k": 1})
    msg = config_error(config, tmp_path)
    assert_mentions(msg, "sharding.files", "shards/gone.jsonl")


def test_num_heads_must_divide_hidden_size(tmp_path: Path) -> None:
    config = minimal(tmp_path, base_model={"tiny": {"hidden_size": 128, "num_heads": 3}})
    msg = config_error(config, tmp_path)
    assert_mentions(msg, "base_model.tiny.num_heads", "3", "128")


def test_num_heads_not_checked_for_hub_models(tmp_path: Path) -> None:
    config = minimal(tmp_path, base_model={"source": "org/model", "tiny": {"hidden_size": 128, "num_heads": 3}})
    assert validate_config(config, tmp_path)["base_model"]["source"] == "org/model"


def test_several_schema_problems_reported_together(tmp_path: Path) -> None:
    config = minimal(tmp_path, base_model={"quantization": "3bit"}, selection={"k": 0}, colour="blue")
    msg = config_error(config, tmp_path)
    assert_mentions(msg, "3 problems", "base_model.quantization", "selection.k", "colour")


def test_several_semantic_problems_reported_together(tmp_path: Path) -> None:
    config = {
        "domains": {"a": {"train": "missing.jsonl"}},
        "selection": {"k": 11, "weights": {"zzz": 1.0}},
        "base_model": {"tiny": {"num_heads": 3}},
    }
    msg = config_error(config, tmp_path)
    assert_mentions(msg, "4 problems", "missing.jsonl", "k=11", "zzz", "num_heads")
    assert msg.count("\n  - ") == 4


def test_missing_domains_is_a_config_error(tmp_path: Path) -> None:
    msg = config_error({}, tmp_path)
    assert "domains" in msg


def test_load_yaml_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        load_yaml(tmp_path / "nope.yaml")


def test_load_yaml_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list"):
        load_yaml(path)


# ------------------------------------------------------------------------------------------------
# Shard ids
# ------------------------------------------------------------------------------------------------


def test_shard_ids_random(tmp_path: Path) -> None:
    config = validate_config(minimal(tmp_path), tmp_path)
    assert shard_ids(config) == [f"shard{i:02d}" for i in range(1, 11)]
    assert shard_ids(config)[0] == "shard01" and shard_ids(config)[-1] == "shard10"


def test_shard_ids_random_width_grows(tmp_path: Path) -> None:
    config = validate_config(minimal(tmp_path, sharding={"n_shards": 100}), tmp_path)
    ids = shard_ids(config)
    assert len(ids) == 100
    assert ids[0] == "shard001" and ids[99] == "shard100"
    assert ids == sorted(ids)  # zero padding keeps lexical order = numeric order


def test_shard_ids_files_are_stems(tmp_path: Path) -> None:
    for name in ("s/alpha.jsonl", "s/beta.jsonl", "t/gamma.jsonl"):
        write_jsonl(tmp_path / name)
    files = ["s/alpha.jsonl", "t/gamma.jsonl", "s/beta.jsonl"]
    config = validate_config(minimal(tmp_path, sharding={"strategy": "files", "files": files}), tmp_path)
    assert shard_ids(config) == ["alpha", "gamma", "beta"]


# ------------------------------------------------------------------------------------------------
# Schema hygiene: every property documented, typed and defaulted
# ------------------------------------------------------------------------------------------------


def schema_offenders(schema: dict[str, Any]) -> list[str]:
    """``path: missing what`` for every property (under any ``properties`` mapping) lacking description,
    default or type. A property in its parent's ``required`` list needs no default."""
    offenders: list[str] = []

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, dict):
            required = set(node.get("required", [])) if isinstance(node.get("required"), list) else set()
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict):
                    for name, sub in value.items():
                        where = ".".join([*path, name])
                        if not isinstance(sub, dict):
                            offenders.append(f"{where}: not a mapping")
                            continue
                        missing = [k for k in ("description", "default") if k not in sub]
                        if name in required and "default" in missing:
                            missing.remove("default")
                        if not ({"type", "$ref", "oneOf"} & set(sub)):
                            missing.append("type")
                        if missing:
                            offenders.append(f"{where}: no {', '.join(missing)}")
                        walk(sub, [*path, name])
                else:
                    walk(value, [*path, key])
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, [*path, str(i)])

    walk(schema, [])
    return offenders


def test_schema_offender_walker_finds_problems() -> None:
    fake = {
        "properties": {
            "ok": {"type": "integer", "description": "d", "default": 1},
            "bad": {"type": "object", "properties": {"inner": {"type": "string"}}, "description": "d", "default": {}},
            "ref": {"$ref": "#/x", "default": None},
        },
        "$defs": {"x": {"properties": {"y": {"description": "d", "default": 0}}}},
    }
    assert sorted(schema_offenders(fake)) == [
        "$defs.x.y: no type",
        "bad.inner: no description, default",
        "ref: no description",
    ]


def test_schema_every_property_has_description_default_type() -> None:
    offenders = schema_offenders(load_schema())
    assert not offenders, "schema properties missing description/default/type:\n  " + "\n  ".join(offenders)


def test_schema_defaults_validate_against_schema(tmp_path: Path) -> None:
    """Filling every default gives a config that still passes the schema (no default violates its own type)."""
    config = validate_config(minimal(tmp_path), tmp_path)
    assert validate_config(config, tmp_path) == config


def test_explicit_null_split_is_accepted(tmp_path: Path) -> None:
    config = minimal(tmp_path)
    config["domains"]["a"]["test"] = None
    assert validate_config(config, tmp_path)["domains"]["a"]["test"] is None


# ------------------------------------------------------------------------------------------------
# The embedded default config
# ------------------------------------------------------------------------------------------------

KEY_LINE = re.compile(r"^\s*[A-Za-z_][\w-]*:")


def test_embedded_config_validates() -> None:
    config = validate_config(load_yaml(REPO / "config" / "config.yaml"), base_dir=REPO)
    assert set(config["domains"]) == {"after", "count", "maximum", "minimum"}
    assert config["sharding"]["strategy"] == "files"
    assert shard_ids(config) == [f"cand{i:02d}" for i in range(1, 11)]
    assert 1 <= config["selection"]["k"] <= len(shard_ids(config))


def test_embedded_config_is_commented() -> None:
    """At least 80% of the key lines under the top-level sections carry a comment on the same line or
    directly above. Entries under ``domains:`` (domain names and their data paths) are exempt: they
    are self-describing paths."""
    lines = (REPO / "config" / "config.yaml").read_text(encoding="utf-8").splitlines()
    section = None
    checked: list[int] = []
    uncommented: list[str] = []
    for i, line in enumerate(lines):
        if not KEY_LINE.match(line):
            continue
        if not line[0].isspace():
            section = line.split(":", 1)[0]
            continue
        if section == "domains":
            continue
        checked.append(i)
        above = lines[i - 1].strip() if i else ""
        if "#" not in line and not above.startswith("#"):
            uncommented.append(f"line {i + 1}: {line.strip()}")
    print("uncommented key lines:\n  " + "\n  ".join(uncommented))
    assert len(checked) >= 20, f"only {len(checked)} key lines found; did config.yaml change shape?"
    ratio = 1 - len(uncommented) / len(checked)
    assert ratio >= 0.8, f"only {ratio:.0%} of {len(checked)} key lines are commented; uncommented:\n  " + "\n  ".join(
        uncommented
    )


def test_missing_local_model_folder_is_a_config_error(tmp_path: Path) -> None:
    cfg = minimal(tmp_path)
    cfg["base_model"] = {"source": "./models/nope"}
    with pytest.raises(ConfigError, match=r"base_model.source: local model folder './models/nope' does not exist"):
        validate_config(cfg, tmp_path)
    cfg["base_model"] = {"source": "mistralai/Mistral-7B-Instruct-v0.2"}  # a hub id is not checked offline
    validate_config(cfg, tmp_path)


def test_unknown_evaluator_names_the_allowed_ones(tmp_path: Path) -> None:
    cfg = minimal(tmp_path)
    cfg["domains"]["a"]["evaluator"] = "bleu"
    with pytest.raises(ConfigError, match=r"domains.a.evaluator: 'bleu' is not one of .*exact_match.*mbpp"):
        validate_config(cfg, tmp_path)


# ------------------------------------------------------------------------------------------------
# Issue 13: what a user hits with their own config
# ------------------------------------------------------------------------------------------------


def test_pretrain_on_domains_without_train_data_names_the_fix(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "v.jsonl")
    write_jsonl(tmp_path / "s1.jsonl")
    cfg = {
        "domains": {"a": {"validation": "v.jsonl"}},
        "sharding": {"strategy": "files", "files": ["s1.jsonl"]},
        "selection": {"k": 1},
        "base_model": {"source": "tiny", "tiny": {"pretrain_on": "domains"}},
    }
    assert_mentions(
        config_error(cfg, tmp_path), "base_model.tiny.pretrain_on", "no domain has `train`", "pretrain_on: shards"
    )
    cfg["base_model"]["tiny"]["pretrain_on"] = "shards"
    validate_config(cfg, tmp_path)
    # A hub model does not pre-train: the setting is irrelevant there.
    cfg["base_model"] = {"source": "mistralai/Mistral-7B-Instruct-v0.2", "tiny": {"pretrain_on": "domains"}}
    validate_config(cfg, tmp_path)


def test_describe_resolution_lists_defaults_that_differ_from_the_embedded_config(tmp_path: Path) -> None:

    from complementarity.config import describe_resolution

    raw = {
        "domains": {"arithmetic": {"train": "config/demo/domains/arithmetic/train.jsonl"}},
        "sharding": {"strategy": "files", "files": ["config/demo/shards/cand01.jsonl"]},
        "selection": {"k": 1},
        "finetune": {"epochs": 4, "learning_rate": 0.002},
    }
    resolved = validate_config(copy.deepcopy(raw), REPO)
    text = describe_resolution(raw, resolved, configfiles=["mine.yaml"], workflow_dir=REPO)
    assert text.startswith("config: mine.yaml. It replaces config/config.yaml (the two are not merged)")
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    # Left out, and the schema default is not the demo's: listed with both values.
    assert "finetune.lora_dropout" in lines and "(config/config.yaml: 0.0)" in lines["finetune.lora_dropout"]
    assert "evaluation.max_new_tokens" in lines and "256" in lines["evaluation.max_new_tokens"]
    # Set in the file (even to the demo's value), or the user's own data: not listed.
    assert "finetune.learning_rate" not in lines and "finetune.epochs" not in lines
    assert not [k for k in lines if k.startswith(("domains", "sharding.files"))]
    # Left out, but the schema default equals the demo's value: not listed.
    assert "selection.metric" not in lines and "finetune.lora_r" not in lines
    # The embedded default itself: one line.
    embedded = load_yaml(REPO / "config" / "config.yaml")
    text = describe_resolution(
        embedded, validate_config(copy.deepcopy(embedded), REPO), configfiles=[], workflow_dir=REPO
    )
    assert text == "config: config/config.yaml (the embedded default)"


def test_the_text_config_validates_and_sets_every_recipe_key(capsys) -> None:
    """config/text.yaml (the earlier default): valid, its own data, no key left to a schema default unlike the default's."""
    raw = load_yaml(REPO / "config" / "text.yaml")
    config = validate_config(copy.deepcopy(raw), base_dir=REPO, announce=["config/text.yaml"])
    assert set(config["domains"]) == {"arithmetic", "reverse", "sort", "units"}
    assert all(f.startswith("config/demo/shards/") for f in config["sharding"]["files"])
    assert config["base_model"]["tiny"]["pretrain_loss"] == "all"
    err = capsys.readouterr().err
    assert err.startswith("config: config/text.yaml. It replaces config/config.yaml") and "key(s) left out" not in err
    # The embedded default learns the answers given the prompts, and is announced in one line.
    embedded = validate_config(load_yaml(REPO / "config" / "config.yaml"), base_dir=REPO, announce=[])
    assert embedded["base_model"]["tiny"]["pretrain_loss"] == "response"
    assert capsys.readouterr().err == "config: config/config.yaml (the embedded default)\n"


def test_validate_config_cli_prints_the_keys_left_to_defaults(tmp_path: Path) -> None:
    from conftest import run_cli

    mine = tmp_path / "mine.yaml"
    cfg = load_yaml(REPO / "config" / "config.yaml")
    del cfg["evaluation"]["max_new_tokens"]
    mine.write_text(yaml.safe_dump(cfg))
    proc = run_cli("validate-config", str(mine), "--base-dir", str(REPO))
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"OK: {mine}: 4 domains, 10 shards")
    assert lines[1].startswith(f"config: {mine}. It replaces config/config.yaml")
    assert "1 key(s) left out take a schema default that differs from config/config.yaml" in proc.stdout
    assert [line.split() for line in lines if line.startswith("  ")] == [
        ["evaluation.max_new_tokens", "256", "(config/config.yaml:", "4)"]
    ]
