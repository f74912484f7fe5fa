"""Offline compute nodes: the base model is fetched once, on the submit node, into the hub cache;
GPU jobs load it from there (or from a local folder), and say what to do when they cannot see it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, env_with_bin

# --- offline compute nodes: the base model is fetched once, on the submit node --------------------------


def fake_hub_cache(cache: Path, repo_id: str, model_dir: Path) -> Path:
    """A Hugging Face hub cache holding ``model_dir`` as the `main` snapshot of ``repo_id``."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in model_dir.iterdir():
        if f.is_file() and f.name not in ("base_model.json", "metrics.json", "provenance.json"):
            shutil.copy(f, snapshot / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "complementarity"), *args], env={**env_with_bin(), **env}, capture_output=True, text=True
    )


def test_a_hub_model_is_taken_from_the_cache_offline_and_recorded_as_a_local_folder(tiny_base, tmp_path):
    from conftest import BASE_CFG

    snapshot = fake_hub_cache(tmp_path / "hub", "acme/tiny-llama", tiny_base)
    offline = {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    cfg = json.dumps({**BASE_CFG, "source": "acme/tiny-llama"})
    proc = cli("base_model", "--max-seq-len", "64", "--base-model", cfg, "--out", str(tmp_path / "base"), env=offline)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "base" / "base_model.json").read_text())
    assert manifest["weights"] == str(snapshot) and manifest["revision"] is None
    assert manifest["hub"] == {"repo_id": "acme/tiny-llama", "revision": None, "commit": snapshot.name}
    assert not (tmp_path / "base" / "model.safetensors").exists(), "the cached weights must not be copied"

    # A GPU job loads it from the snapshot folder: offline, and with no hub cache configured at all.
    from complementarity.modeling import load_base

    model, _, loaded = load_base(tmp_path / "base")
    assert loaded["weights"] == str(snapshot) and sum(p.numel() for p in model.parameters()) > 0


def test_a_hub_model_missing_from_the_cache_offline_is_a_clear_error(tmp_path):
    from conftest import BASE_CFG

    offline = {"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"}
    cfg = json.dumps({**BASE_CFG, "source": "acme/not-cached"})
    proc = cli("base_model", "--max-seq-len", "64", "--base-model", cfg, "--out", str(tmp_path / "base"), env=offline)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (
        "acme/not-cached" in proc.stderr and "not in the hub cache" in proc.stderr and "HF_HUB_OFFLINE=1" in proc.stderr
    )
    assert not (tmp_path / "base").exists()


def test_a_local_model_folder_is_recorded_not_copied(tiny_base, tmp_path):
    from conftest import BASE_CFG

    from complementarity.modeling import read_manifest, write_manifest

    (tmp_path / "base").mkdir()
    write_manifest(tmp_path / "base", {**BASE_CFG, "source": str(tiny_base)}, str(tiny_base))
    manifest = read_manifest(tmp_path / "base")
    assert manifest["weights"] == str(tiny_base) and "hub" not in manifest
    assert [p.name for p in (tmp_path / "base").iterdir()] == ["base_model.json"]


def test_a_fetched_snapshot_the_node_cannot_see_is_named(tmp_path):
    from complementarity.errors import UserError
    from complementarity.modeling import read_manifest

    gone = {"repo_id": "acme/tiny-llama", "revision": None, "commit": "0" * 40}
    manifest = {"source": "acme/tiny-llama", "weights": str(tmp_path / "no-such-snapshot"), "hub": gone}
    (tmp_path / "base_model.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="HF_HOME or HF_HUB_CACHE"):
        read_manifest(tmp_path)
