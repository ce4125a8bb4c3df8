"""The embedded local store: git repo per dataset, Hub file layout, tags as immutable versions."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from datasets import Dataset, DatasetDict, Features, List, Value

from codepref.errors import CodeprefError, ConfigError, DataError
from codepref.hub import (
    LocalStore,
    PublishConfig,
    PullConfig,
    get_store,
    mirror,
    publish,
    publish_with_config,
    pull,
    pull_with_config,
    versions,
)
from codepref.hub.hf_hub import HubStore

FEATURES = Features(
    {
        "task_id": Value("string"),
        "samples": List(Value("string")),
        "exec_matrix": List(List(Value("int8"))),
        "passed": List(Value("bool")),
    }
)


def samples(n: int, offset: int = 0) -> Dataset:
    return Dataset.from_dict(
        {
            "task_id": [f"he/{i + offset}" for i in range(n)],
            "samples": [[f"s{i}", f"t{i}"] for i in range(n)],
            "exec_matrix": [[[0, 1], [i % 6, 0]] for i in range(n)],
            "passed": [[i % 2 == 0, False] for i in range(n)],
        },
        features=FEATURES,
    )


def test_v1_stays_exactly_v1_after_v2(local_store):
    v1 = publish(samples(5), "org/ds", config="samples", version="v1", store=local_store)
    publish(samples(3, offset=100), "org/ds", config="samples", version="v2", store=local_store)
    got = pull("org/ds", config="samples", revision="v1", split="train", store=local_store)
    assert got.to_dict() == samples(5).to_dict()
    assert got.features == FEATURES  # list[list[int8]] survives the round trip
    assert pull("org/ds", config="samples", revision="main", split="train", store=local_store)["task_id"] == [
        "he/100",
        "he/101",
        "he/102",
    ]
    assert pull("org/ds", config="samples", revision=v1.commit, split="train", store=local_store).num_rows == 5
    assert [v.version for v in versions("org/ds", store=local_store)] == ["v1", "v2"]
    assert versions("org/ds", store=local_store)[0].commit == v1.commit


def test_hub_layout_and_git_history(local_store):
    dd = DatasetDict({"train": samples(4), "test": samples(2)})
    pv = publish(
        {"samples": dd, "pairs-pvf": Dataset.from_dict({"prompt": ["p"], "chosen": ["a"], "rejected": ["b"]})},
        "org/layout",
        version="v1.0",
        store=local_store,
    )
    assert pv.configs == ("pairs-pvf", "samples") and pv.store == "local"
    files = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", "v1.0"], cwd=pv.location, text=True, capture_output=True, check=True
    ).stdout.split()
    assert sorted(files) == [
        "README.md",
        "pairs-pvf/train-00000-of-00001.parquet",
        "samples/test-00000-of-00001.parquet",
        "samples/train-00000-of-00001.parquet",
    ]
    meta = yaml.safe_load((local_store.repo_dir("org/layout") / "README.md").read_text().split("---\n")[1])
    samples_cfg = next(c for c in meta["configs"] if c["config_name"] == "samples")
    assert samples_cfg["data_files"] == [
        {"split": "train", "path": "samples/train-*"},
        {"split": "test", "path": "samples/test-*"},
    ]
    tags = subprocess.run(["git", "tag", "-n"], cwd=pv.location, text=True, capture_output=True).stdout
    assert "v1.0" in tags
    author = subprocess.run(
        ["git", "log", "-1", "--format=%an <%ae>"], cwd=pv.location, text=True, capture_output=True
    ).stdout.strip()
    assert author == "codepref <codepref@localhost>"
    got = pull("org/layout", config="samples", revision="v1.0", store=local_store)
    assert set(got) == {"train", "test"} and got["test"].num_rows == 2


def test_multiple_shards(local_store, monkeypatch):
    monkeypatch.setattr("codepref.hub.local_store.num_shards", lambda ds: 3)
    pv = publish(samples(10), "org/sharded", config="samples", version="v1", store=local_store)
    shards = sorted(p.name for p in (local_store.repo_dir("org/sharded") / "samples").iterdir())
    assert shards == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    assert (
        pull("org/sharded", config="samples", revision=pv.version, split="train", store=local_store).to_dict()
        == samples(10).to_dict()
    )


def test_republishing_a_version_is_refused(local_store):
    publish(samples(2), "org/imm", config="samples", version="v1", store=local_store)
    with pytest.raises(CodeprefError, match="already exists.*immutable"):
        publish(samples(3), "org/imm", config="samples", version="v1", store=local_store)
    with pytest.raises(CodeprefError, match="already exists"):
        publish(samples(3), "org/imm", config="other", version="v1", store=local_store)
    assert pull("org/imm", config="samples", revision="v1", split="train", store=local_store).num_rows == 2
    assert len(versions("org/imm", store=local_store)) == 1


def test_errors_name_what_is_wrong(local_store):
    with pytest.raises(DataError, match="no dataset 'org/none'"):
        pull("org/none", config="samples", revision="v1", store=local_store)
    publish(samples(1), "org/err", config="samples", version="v1", store=local_store)
    with pytest.raises(DataError, match="no revision 'v9'.*v1"):
        pull("org/err", config="samples", revision="v9", store=local_store)
    with pytest.raises(DataError, match="no config 'pairs'.*samples"):
        pull("org/err", config="pairs", revision="v1", store=local_store)
    for bad in ("main", "", "a b", "v1.", "../v1", "0" * 40):
        with pytest.raises(ConfigError):
            publish(samples(1), "org/err", config="samples", version=bad, store=local_store)
    with pytest.raises(ConfigError):
        publish(samples(1), "../escape", config="samples", version="v2", store=local_store)
    with pytest.raises(ConfigError, match="config= is required"):
        publish(samples(1), "org/err", version="v2", store=local_store)
    assert versions("org/never", store=local_store) == []


def test_checkout_is_cached_by_commit(local_store):
    pv = publish(samples(2), "org/cache", config="samples", version="v1", store=local_store)
    folder = local_store.snapshot("org/cache", "v1")
    assert folder.name == pv.commit and (folder / "samples" / "train-00000-of-00001.parquet").is_file()
    assert local_store.snapshot("org/cache", pv.commit) == folder


def test_store_selection(local_store, monkeypatch, tmp_path):
    assert isinstance(get_store(), LocalStore) and get_store().root == local_store.root
    assert isinstance(get_store("hub"), HubStore)
    assert isinstance(get_store(None, "hf://datasets/org/x"), HubStore)
    assert get_store(str(tmp_path / "other")).root == tmp_path / "other"
    monkeypatch.setenv("CODEPREF_STORE", "hub")
    assert isinstance(get_store(), HubStore)
    with pytest.raises(ConfigError):
        get_store("ftp")
    assert "hf_" not in repr(HubStore(token="hf_secretsecretsecretsecret"))


def test_config_dataclasses_drive_the_api(local_store, tmp_path):
    card = tmp_path / "card.yaml"
    card.write_text("pretty_name: From YAML\nprovenance:\n  model: tiny-llama\n  api_key: sk-123\n")
    pv = publish_with_config(samples(2), "org/cfg", PublishConfig(config_name="samples", version="v1", card=str(card)))
    readme = (local_store.repo_dir("org/cfg") / "README.md").read_text()
    assert "From YAML" in readme and "tiny-llama" in readme and "sk-123" not in readme
    got = pull_with_config("org/cfg", PullConfig(config_name="samples", revision=pv.version, split="train"))
    assert got.num_rows == 2
    with pytest.raises(ConfigError):
        PublishConfig(config_name="samples", version="main")


def test_mirror_between_local_stores(local_store, tmp_path):
    publish(samples(2), "org/m", config="samples", version="v1", store=local_store)
    publish(samples(3), "org/m", config="samples", version="v2", store=local_store)
    other = LocalStore(tmp_path / "other")
    assert [p.version for p in mirror(local_store, other, "org/m")] == ["v1", "v2"]
    assert mirror(local_store, other, "org/m") == []  # nothing left to copy
    assert pull("org/m", config="samples", revision="v1", split="train", store=other).num_rows == 2
    assert (other.snapshot("org/m", "v2") / "README.md").read_text() == (
        local_store.snapshot("org/m", "v2") / "README.md"
    ).read_text()
