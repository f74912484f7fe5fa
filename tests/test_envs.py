"""Conda envs: every rule names one in envs/, the env files install this package themselves, and they
agree with pyproject.toml on every version both pin.

`--software-deployment-method conda` itself cannot run here (conda channels are not reachable from
our machines); these checks are what can be verified without it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, env_with_bin

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ENVS = REPO / "envs"

# Load the workflow with Snakemake's API in a fresh interpreter (it changes directory and logging)
# and report each rule's env, whether it is a local rule, and whether it runs anything.
# `_workflow` / `_localrules` are internals of the pinned snakemake==9.27.1.
_RULES_SCRIPT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings
configfiles = [Path(p) for p in sys.argv[1:]]
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    wf = api.workflow(
        resource_settings=ResourceSettings(),
        config_settings=ConfigSettings(configfiles=configfiles),
        storage_settings=StorageSettings(),
        workdir=Path("."),
        snakefile=Path("Snakefile"),
    )._workflow
    print(json.dumps({
        r.name: {"conda": r.conda_env, "local": r.name in wf._localrules, "runs": not r.norun}
        for r in wf.rules
    }))
"""


def load_rules(workdir: Path, *configfiles: str) -> dict[str, dict]:
    """{rule: {"conda": env path relative to its rule file, "local": bool, "runs": bool}}."""
    proc = subprocess.run(
        [sys.executable, "-c", _RULES_SCRIPT, *configfiles],
        cwd=workdir,
        env=env_with_bin(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pins(requirements: list[str]) -> dict[str, str]:
    """{normalized name: version} for `name==version` requirements."""
    out = {}
    for req in requirements:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)\s*", req)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def env_file(path: Path) -> tuple[list[str], list[str]]:
    """(conda dependencies, pip requirements) of an env file."""
    env = yaml.safe_load(path.read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [r for d in env["dependencies"] if isinstance(d, dict) for r in d.get("pip", [])]
    return conda, pip


PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT_PINS = pins(PYPROJECT["project"]["dependencies"])
ENV_FILES = sorted(ENVS.glob("*.yaml"))


@pytest.mark.parametrize("configfile", [None, "config/paper.yaml"])
def test_every_rule_that_runs_something_names_an_env_in_envs(configfile):
    rules = load_rules(REPO, *([configfile] if configfile else []))
    assert {"finetune_shard", "score_group", "prepare_data", "select_topk", "finetune_study"} <= set(rules)
    for name, rule in rules.items():
        if not rule["runs"]:
            continue
        assert rule["conda"], f"rule {name} names no conda env"
        # Env paths are relative to the rule file (workflow/rules/*.smk).
        path = (REPO / "workflow" / "rules" / rule["conda"]).resolve()
        assert path.parent == ENVS and path.is_file(), f"rule {name}: env {rule['conda']} is not a file in envs/"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_pins_agree_with_pyproject(path):
    conda, pip = env_file(path)
    env_pins = pins(pip)
    unpinned = [r for r in pip if not r.startswith("-e ") and "==" not in r]
    assert not unpinned, f"{path.name}: unpinned pip requirements {unpinned}"
    for name, version in env_pins.items():
        if name in PROJECT_PINS:
            assert version == PROJECT_PINS[name], (
                f"{path.name} pins {name}=={version}, pyproject.toml {PROJECT_PINS[name]}"
            )
    # Everything the env pins that the project depends on is pinned here and there alike; the rest of the
    # project's dependencies come with the package itself (-e ..), at pyproject.toml's pins.
    assert set(env_pins) <= set(PROJECT_PINS) | {"pip"}, f"{path.name} pins packages pyproject.toml does not"
    python = next(d for d in conda if d.startswith("python="))
    floor = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    as_tuple = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
    assert as_tuple(python.removeprefix("python=")) >= as_tuple(floor), f"{path.name}: {python} < {floor}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_installs_this_package_itself(path):
    _, pip = env_file(path)
    editable = [r.split(None, 1)[1] for r in pip if r.startswith("-e ")]
    assert editable, f"{path.name} does not install the project (`-e ..` under pip:)"
    # conda runs pip from the env file's folder, so `..` is the repository root.
    root = (path.parent / editable[0]).resolve()
    assert (root / "pyproject.toml").is_file() and root == REPO, f"{path.name}: -e {editable[0]} is not this project"


def test_workflow_extras_pin_snakemake_and_the_slurm_plugin():
    extras = PYPROJECT["project"]["optional-dependencies"]
    for extra in ("workflow", "dev"):
        p = pins(extras[extra])
        assert p.get("snakemake") == "9.27.1", extra
        assert p.get("snakemake-executor-plugin-slurm") == "2.8.0", extra
