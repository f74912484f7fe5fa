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
import sys
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
    try:
        with path.open(encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise ConfigError(
            f"{where}: YAML syntax error: {what}; fix that line (indent with spaces only, quote values holding ': ')"
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable YAML file ({exc}); fix it") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys, not {type(data).__name__}")
    return data


def check_yaml_syntax(path: str | Path) -> None:
    """For the Snakefile, before ``configfile:``: a YAML syntax error as a WorkflowError naming file:line."""
    try:
        load_yaml(path)
    except ConfigError as exc:
        from snakemake.exceptions import WorkflowError

        raise WorkflowError(str(exc)) from None


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


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _types(expected: Any) -> str:
    names = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
             "array": "a list", "object": "a mapping of keys", "null": "null"}  # fmt: skip
    return " or ".join(names.get(t, t) for t in ([expected] if isinstance(expected, str) else expected))


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
        elif err.validator == "propertyNames" or (err.validator == "pattern" and where == "domains"):
            msg = (
                f"{where}: name {err.instance!r} may only use letters, digits, '_' and '-' (it becomes part of file "
                f"names and Snakemake wildcards); rename it, for example to {re.sub(r'[^A-Za-z0-9_-]', '_', str(err.instance))!r}"
            )
        elif err.validator == "type":
            msg = f"{where}: {err.instance!r} is a {_json_type(err.instance)}, but this key must be {_types(err.validator_value)}"
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


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "tokenizer.tiktoken")


def model_folder_problems(folder: Path, name: str) -> list[str]:
    """What a local model folder lacks: config.json, weights, a tokenizer."""
    if not folder.is_dir():
        return [f"{name!r} is a file, not a model folder; give the folder that holds config.json and the weights"]
    problems = []
    if not (folder / "config.json").is_file():
        problems.append(f"model folder {name!r} has no config.json; give the folder of a Hugging Face model")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        problems.append(
            f"model folder {name!r} has no weights (*.safetensors or *.bin); copy the model's weight files into it"
        )
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        problems.append(
            f"model folder {name!r} has no tokenizer ({' or '.join(TOKENIZER_FILES[:2])}, with tokenizer_config.json); "
            "copy the tokenizer files of the model's release into it"
        )
    return problems


def file_problem(base_dir: Path, p: str) -> str | None:
    """Why the data file ``p`` cannot be read, as the end of a sentence; None when it is a readable file."""
    import errno
    import os

    path = base_dir / p
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{p!r} is a symbolic link loop (a link that points back to itself); point it at the real file"
        if exc.errno == errno.EACCES:
            return f"{p!r} cannot be read (permission denied); make it readable"
        if path.is_symlink():
            return f"{p!r} is a symbolic link to {os.readlink(path)!r}, which does not exist; fix the link"
        return f"file {p!r} does not exist (relative to {str(base_dir)!r}); fix the path"
    if path.is_dir():
        return f"{p!r} is a directory, not a file; name a data file inside it (for example {p}/train.jsonl)"
    if not path.is_file():
        return f"{p!r} is not a regular file; name a data file"
    return None


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
                if why := file_problem(base_dir, p):
                    problems.append(f"domains.{name}.{split}: {why}")

    if strategy == "files":
        files = sharding["files"]
        if not files:
            problems.append("sharding.files: strategy files needs at least one candidate shard file; list them")
        for f in files:
            if why := file_problem(base_dir, f):
                problems.append(f"sharding.files: {why}")
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

    folder = base_dir / Path(source).expanduser()
    if is_gguf(config["base_model"]):
        try:
            resolve_gguf(config["base_model"], base_dir)
        except UserError as exc:
            problems.append(str(exc))
    elif source != "tiny" and looks_like_path(source) and not folder.exists():
        problems.append(
            f"base_model.source: local model folder {source!r} does not exist (relative to {str(base_dir)!r}); "
            "fix the path, or give a hub id such as mistralai/Mistral-7B-Instruct-v0.2, or `tiny`"
        )
    elif source != "tiny" and looks_like_path(source):
        problems.extend(f"base_model.source: {p}" for p in model_folder_problems(folder, source))
    tiny = config["base_model"]["tiny"]
    if source == "tiny" and tiny["pretrain_on"] == "domains":
        without = [name for name, spec in domains.items() if spec.get("train") is None]
        if without and len(without) == len(domains):
            problems.append(
                "base_model.tiny.pretrain_on: `domains` pre-trains the tiny model on the domains' training data, "
                f"but no domain has `train` ({', '.join(without)}); set pretrain_on: shards (or auto), "
                "or give the domains `train` data"
            )
    if source == "tiny" and tiny["hidden_size"] % tiny["num_heads"]:
        problems.append(
            f"base_model.tiny.num_heads: {tiny['num_heads']} does not divide hidden_size {tiny['hidden_size']}; pick a divisor"
        )
    if "merge" in (config["final"]["method"], *config["evaluation"]["final_methods"]):
        from .merge import merge_settings_errors

        problems += merge_settings_errors(config["final"]["merge"])
    return problems


def validate_config(
    config: dict[str, Any], base_dir: str | Path = ".", *, announce: list[str] | None = None
) -> dict[str, Any]:
    """Validate ``config`` and fill in defaults in place; return it. Raises ConfigError listing every problem.

    ``announce``: the run's ``--configfile`` list (the workflow passes it); then, once the config is
    valid, print to stderr which config the run uses and the keys it left to schema defaults that
    differ from the embedded default (:func:`describe_resolution`).
    """
    raw = copy.deepcopy(config) if announce is not None else None  # as written, before the defaults fill it
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
    if announce is not None:
        print(
            describe_resolution(raw, config, configfiles=[str(f) for f in announce], workflow_dir=base_dir),
            file=sys.stderr,
        )
    return config


def check_workdir(base_dir: str | Path) -> None:
    """Refuse to start a run whose results/, logs/ or benchmarks/ cannot be written (read-only, full disk).

    Raises ConfigError naming the folder and the fix; the workflow calls it before scheduling any job.
    """
    from .atomic import check_writable
    from .errors import DiskError

    try:
        check_writable(base_dir)
    except DiskError as exc:
        raise ConfigError(str(exc)) from None


def load_config(path: str | Path, base_dir: str | Path = ".") -> dict[str, Any]:
    """Read a YAML config and validate it."""
    return validate_config(load_yaml(path), base_dir)


# --- what a config left to the defaults ---------------------------------------------------------------

EMBEDDED = "config/config.yaml"
"""The embedded default config, relative to the workflow folder."""

# Sections that describe the user's own data, where a difference from the demo is expected.
_OWN_DATA = ("domains", "sharding.files")


def _leaves(node: Any, schema: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{dotted key: value} for every schema-described leaf of ``node`` (objects recurse, lists are leaves)."""
    out: dict[str, Any] = {}
    props = schema.get("properties", {})
    for key, sub in props.items():
        if not isinstance(node, dict) or key not in node:
            continue
        path = f"{prefix}{key}"
        if sub.get("type") == "object" and "properties" in sub and isinstance(node[key], dict):
            out.update(_leaves(node[key], sub, path + "."))
        else:
            out[path] = node[key]
    return out


def defaulted_keys(raw: dict[str, Any], resolved: dict[str, Any]) -> dict[str, Any]:
    """{dotted key: schema default} for every key of ``resolved`` that ``raw`` (the config as written) left out."""
    schema = load_schema()
    given, full = _leaves(raw, schema), _leaves(resolved, schema)
    return {k: v for k, v in full.items() if k not in given}


def describe_resolution(
    raw: dict[str, Any], resolved: dict[str, Any], *, configfiles: list[str], workflow_dir: str | Path = "."
) -> str:
    """What a run is really configured with, for the start of a run and ``validate-config``.

    Snakemake's ``--configfile`` *replaces* the embedded default (config/config.yaml), and every key
    left out takes its schema default, which is often not the embedded default's value (a recipe for
    real models, not for the tiny demo). This lists those keys, with both values, so that a user who
    copied three keys sees which recipe the rest of the run follows.
    """

    def shown(f: str) -> str:  # Snakemake passes absolute paths: show them relative to the workflow
        try:
            return str(Path(f).resolve().relative_to(Path(workflow_dir).resolve()))
        except ValueError:
            return str(f)

    names = ", ".join(map(shown, configfiles)) if configfiles else EMBEDDED
    embedded_path = Path(workflow_dir) / EMBEDDED
    is_embedded = not configfiles or all(Path(f).resolve() == embedded_path.resolve() for f in configfiles)
    if is_embedded:
        return f"config: {names} (the embedded default)"
    lines = [
        f"config: {names}. It replaces {EMBEDDED} (the two are not merged): every key it leaves out takes the "
        "schema default (workflow/schemas/config.schema.yaml)."
    ]
    if not embedded_path.is_file():
        return lines[0]
    try:
        embedded = validate_config(load_yaml(embedded_path), Path(workflow_dir))
    except ConfigError:
        return lines[0]
    theirs = _leaves(embedded, load_schema())
    differ = [
        (k, v, theirs[k])
        for k, v in defaulted_keys(raw, resolved).items()
        if k in theirs and theirs[k] != v and not k.startswith(_OWN_DATA)
    ]
    if differ:
        lines.append(
            f"{len(differ)} key(s) left out take a schema default that differs from {EMBEDDED}; "
            "set them to keep the embedded recipe:"
        )
        width = max(len(k) for k, _, _ in differ)
        lines += [f"  {k:<{width}}  {v!r:<12} ({EMBEDDED}: {e!r})" for k, v, e in differ]
    return "\n".join(lines)


# --- CLI: complementarity validate-config -----------------------------------------------------------


def register_arguments(parser) -> None:
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("--base-dir", default=".", help="folder relative paths in the config resolve against")


def run(args) -> None:
    raw = load_yaml(args.config)
    cfg = validate_config(copy.deepcopy(raw), args.base_dir)
    print(f"OK: {args.config}: {len(cfg['domains'])} domains, {len(shard_ids(cfg))} shards, k={cfg['selection']['k']}")
    print(describe_resolution(raw, cfg, configfiles=[args.config], workflow_dir=args.base_dir))
