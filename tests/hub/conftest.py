"""Fixtures of the hub tests: a loopback Hub server, a client subprocess env, an isolated local store."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _load_server_module():
    spec = importlib.util.spec_from_file_location("codepref_tests_hub_server", HERE / "hub_server.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def hub_server() -> Iterator[object]:
    """A Hub-compatible HTTP server on 127.0.0.1 (random port), in a thread, for the whole session."""
    server = _load_server_module().HubServer().start()
    yield server
    server.stop()


def client_env(server_url: str, workdir: Path) -> dict[str, str]:
    """Env for a client subprocess: online against the loopback server only, every cache in ``workdir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(
        HF_ENDPOINT=server_url,
        HF_HUB_OFFLINE="0",
        HF_DATASETS_OFFLINE="0",
        TRANSFORMERS_OFFLINE="0",
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_TOKEN="hf_loopbacktesttoken0123456789abcdef",
        HF_HOME=str(workdir / "hf-home"),
        HF_DATASETS_CACHE=str(workdir / "hf-datasets"),
        CODEPREF_HUB=str(workdir / "local-hub"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(k, None)
    return env


def run_client(script: Path, server_url: str, workdir: Path, timeout: float = 120) -> dict:
    """Run ``script OUT.json`` against the server; return what it wrote (fail with its stderr otherwise)."""
    out = workdir / "client-out.json"
    proc = subprocess.run(
        [sys.executable, str(script), str(out)],
        env=client_env(server_url, workdir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0 or not out.exists():
        pytest.fail(f"hub client failed (rc={proc.returncode}):\n{proc.stderr[-6000:]}")
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def hub_run(hub_server, tmp_path_factory) -> dict:
    """One client session against the loopback Hub (publish, tag, branch, load, mirror); its observations."""
    workdir = tmp_path_factory.mktemp("hub-client")
    result = run_client(HERE / "hub_client.py", hub_server.url, workdir)
    result["_unknown_routes"] = list(hub_server.unknown)
    result["_workdir"] = str(workdir)
    return result


@pytest.fixture
def local_store(tmp_path, monkeypatch):
    """An empty embedded store under ``tmp_path``; 🤗 datasets' cache isolated there too."""
    import datasets

    from codepref.hub import LocalStore

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")
    monkeypatch.setenv("CODEPREF_HUB", str(tmp_path / "hub"))
    monkeypatch.delenv("CODEPREF_STORE", raising=False)
    return LocalStore(tmp_path / "hub")
