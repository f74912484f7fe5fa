"""Load, validate and resolve the workflow configuration.

The JSON schema (``schemas/config.schema.yaml``, linked from ``workflow/schemas/``) is the single
source of truth for keys, types, documentation and defaults. :func:`validate_config` checks a config
against it, then checks what a schema cannot express (k <= N, files exist, shard ids unique, weights
name real domains), collects *every* problem and raises one :class:`ConfigError` that lists them.
"""

from __future__ import annotations

import copy
import logging
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, UserError

log = logging.getLogger(__name__)

SHARD_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def looks_like_path(source: str) -> bool:
    """A local path rather than a hub id (``org/name``)."""
    return source.startswith((".", "/", "~")) or source.count("/") != 1 or Path(source).exists()


def load_schema() -> dict[str, Any]:
    text = resources.files("complementarity").joinpath("schemas/config.schema.yaml").read_text()
    return yaml.safe_load(text)


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; pass the path of a YAML config")
    with path.open(encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys, not {type(data).__name__}")
    return data


def _fill_defaults(node: Any, schema: dict[str, Any]) -> None:
    """Fill in schema defaults, recursively, in place (objects only)."""
    if not isinstance(node, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in node and "default" in sub:
            node[key] = copy.deepcopy(sub["default"])
        if key in node and sub.get("type") == "object":
            _fill_defaults(node[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("type") == "object":
        for key, value in node.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, extra)


def defaults(section: str) -> dict[str, Any]:
    """The schema's defaults of one config section (nested objects filled in too)."""
    node: dict[str, Any] = {}
    _fill_defaults(node, load_schema()["properties"][section])
    return node


def _key_path(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def schema_errors(config: dict[str, Any], schema: dict[str, Any] | None = None) -> list[str]:
    """Every schema violation as a sentence naming the key."""
    import jsonschema

    schema = schema or load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        where = _key_path(err.absolute_path)
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            msg = f"{where}: {err.message}; allowed keys: {', '.join(allowed)}"
        elif err.validator == "enum":
            msg = f"{where}: {err.instance!r} is not one of {err.validator_value}"
        else:
            msg = f"{where}: {err.message}"
        problems.append(msg)
    return problems


def local_paths(spec: Any) -> list[str]:
    """The local file paths a source spec names (hub specs name none)."""
    if spec is None:
        return []
    if isinstance(spec, str):
        return [spec]
    if isinstance(spec, list):
        return [p for s in spec for p in local_paths(s)]
    if isinstance(spec, dict) and spec.get("path"):
        return [spec["path"]]
    return []


def shard_ids(config: dict[str, Any]) -> list[str]:
    """Shard ids in order: ``shard01``… for strategy random, file stems for strategy files."""
    sharding = config["sharding"]
    if sharding["strategy"] == "random":
        width = max(2, len(str(sharding["n_shards"])))
        return [f"shard{i:0{width}d}" for i in range(1, sharding["n_shards"] + 1)]
    return [Path(f).name.split(".")[0] for f in sharding["files"]]


FORMAT_EVALUATOR = {"gsm8k": "gsm8k", "mbpp": "mbpp", "mmlu": "multiple_choice", "prompt_response": "exact_match"}


def _spec_format(spec: Any) -> str:
    if isinstance(spec, list):
        formats = {_spec_format(s) for s in spec}
        return formats.pop() if len(formats) == 1 else "prompt_response"
    if isinstance(spec, dict):
        return spec.get("format") or "prompt_response"
    return "prompt_response"


def evaluators(config: dict[str, Any]) -> dict[str, str]:
    """Domain -> evaluator: the configured one, else the one that fits the test data's format."""
    out = {}
    for name, spec in config["domains"].items():
        out[name] = spec.get("evaluator") or FORMAT_EVALUATOR[_spec_format(spec.get("test") or spec.get("train"))]
    return out


def shard_files(config: dict[str, Any]) -> dict[str, str]:
    """Shard id -> source file (strategy files only)."""
    return dict(zip(shard_ids(config), config["sharding"]["files"], strict=True))


def semantic_errors(config: dict[str, Any], base_dir: Path) -> list[str]:
    """What the schema cannot check. ``config`` has its defaults filled in."""
    problems: list[str] = []
    domains = config["domains"]
    sharding = config["sharding"]
    strategy = sharding["strategy"]

    for name, spec in domains.items():
        if spec.get("train") is None and spec.get("validation") is None:
            problems.append(
                f"domains.{name}: needs `validation` data, or `train` data to carve it from; add one of them"
            )
        if strategy == "random" and spec.get("train") is None:
            problems.append(
                f"domains.{name}.train: strategy random pools the domains' training data into shards, "
                "so every domain needs `train`; add it, or use sharding.strategy: files"
            )
        for split in ("train", "validation", "test"):
            for p in local_paths(spec.get(split)):
                if not (base_dir / p).is_file():
                    problems.append(
                        f"domains.{name}.{split}: file {p!r} does not exist (relative to {str(base_dir)!r}); fix the path"
                    )

    if strategy == "files":
        files = sharding["files"]
        if not files:
            problems.append("sharding.files: strategy files needs at least one candidate shard file; list them")
        for f in files:
            if not (base_dir / f).is_file():
                problems.append(
                    f"sharding.files: file {f!r} does not exist (relative to {str(base_dir)!r}); fix the path"
                )
        seen: dict[str, str] = {}
        for sid, f in zip(shard_ids(config), files, strict=True):
            if not SHARD_ID_RE.match(sid):
                problems.append(
                    f"sharding.files: shard id {sid!r} (stem of {f!r}) may only use letters, digits, '_', '-' and '.'; rename the file"
                )
            if sid in seen:
                problems.append(
                    f"sharding.files: duplicate shard id {sid!r} from {seen[sid]!r} and {f!r}; shard ids are file stems, rename one file"
                )
            seen[sid] = f
    n = len(shard_ids(config))
    k = config["selection"]["k"]

    if n and k > n:
        problems.append(f"selection.k: k={k} is larger than the number of shards N={n}; set k <= {n} or add shards")

    for name in config["selection"]["weights"]:
        if name not in domains:
            problems.append(f"selection.weights: unknown domain {name!r}; known domains: {', '.join(sorted(domains))}")
    if config["selection"]["weights"] and not any(config["selection"]["weights"].values()):
        problems.append("selection.weights: all weights are 0; give at least one domain a positive weight")

    source = config["base_model"]["source"]
    from .gguf_source import is_gguf, resolve_gguf

    if is_gguf(config["base_model"]):
        try:
            resolve_gguf(config["base_model"], base_dir)
        except UserError as exc:
            problems.append(str(exc))
    elif source != "tiny" and looks_like_path(source) and not (base_dir / Path(source).expanduser()).exists():
        problems.append(
            f"base_model.source: local model folder {source!r} does not exist (relative to {str(base_dir)!r}); "
            "fix the path, or give a hub id such as mistralai/Mistral-7B-Instruct-v0.2, or `tiny`"
        )
    tiny = config["base_model"]["tiny"]
    if config["base_model"]["source"] == "tiny" and tiny["hidden_size"] % tiny["num_heads"]:
        problems.append(
            f"base_model.tiny.num_heads: {tiny['num_heads']} does not divide hidden_size {tiny['hidden_size']}; pick a divisor"
        )
    if "merge" in (config["final"]["method"], *config["evaluation"]["final_methods"]):
        from .merge import merge_settings_errors

        problems += merge_settings_errors(config["final"]["merge"])
    return problems


def validate_config(config: dict[str, Any], base_dir: str | Path = ".") -> dict[str, Any]:
    """Validate ``config`` and fill in defaults in place; return it. Raises ConfigError listing every problem."""
    schema = load_schema()
    problems = schema_errors(config, schema)
    if not problems:
        _fill_defaults(config, schema)
        problems = semantic_errors(config, Path(base_dir))
    if problems:
        raise ConfigError(
            "invalid configuration ("
            + str(len(problems))
            + " problem"
            + ("s" if len(problems) > 1 else "")
            + "):\n  - "
            + "\n  - ".join(problems)
        )
    return config


def load_config(path: str | Path, base_dir: str | Path = ".") -> dict[str, Any]:
    """Read a YAML config and validate it."""
    return validate_config(load_yaml(path), base_dir)


# --- CLI: complementarity validate-config -----------------------------------------------------------


def register_arguments(parser) -> None:
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("--base-dir", default=".", help="folder relative paths in the config resolve against")


def run(args) -> None:
    cfg = load_config(args.config, args.base_dir)
    print(f"OK: {args.config}: {len(cfg['domains'])} domains, {len(shard_ids(cfg))} shards, k={cfg['selection']['k']}")
