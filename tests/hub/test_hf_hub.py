"""The Hub backend, driven through the real huggingface_hub/datasets clients against a loopback Hub."""

from __future__ import annotations

import yaml

V1_ROWS = {
    "task_id": ["he/0", "he/1"],
    "samples": [["a", "b"], ["c"]],
    "exec_matrix": [[[0, 1], [1, 3]], [[4]]],
    "passed": [[True, False], [False]],
}
V2_ROWS = {"task_id": ["he/1"], "samples": [["c", "d"]], "exec_matrix": [[[4], [0]]], "passed": [[False, True]]}


def _meta(readme: str) -> dict:
    return yaml.safe_load(readme.split("---\n")[1])


def test_no_unknown_routes(hub_run):
    assert hub_run["_unknown_routes"] == []


def test_push_several_configs_and_tag(hub_run):
    assert hub_run["v1"]["configs"] == ["problems", "samples"]
    assert hub_run["v2"]["configs"] == ["pairs-all", "problems", "samples"]  # v2 keeps v1's problems
    tags = hub_run["refs"]["tags"]
    assert tags["v1"] == hub_run["v1"]["commit"] and tags["v2"] == hub_run["v2"]["commit"]
    assert hub_run["versions"] == [["v1", hub_run["v1"]["commit"]], ["v2", hub_run["v2"]["commit"]]]
    assert hub_run["refs"]["branches"] == ["dev", "main"]


def test_hub_file_layout(hub_run):
    files = [p for p in hub_run["tree_v2"] if "." in p.rsplit("/", 1)[-1]]
    assert set(files) == {
        ".gitattributes",
        "README.md",
        "pairs-all/train-00000-of-00001.parquet",
        "problems/train-00000-of-00001.parquet",
        "problems/test-00000-of-00001.parquet",
        "samples/train-00000-of-00001.parquet",
    }


def test_load_dataset_at_tag_branch_and_main(hub_run):
    load = hub_run["load"]
    assert load["v1"] == V1_ROWS  # v1 is exactly v1's rows after v2 was published
    assert load["v2"] == V2_ROWS
    assert load["dev"] == V1_ROWS  # branch created at v1
    assert load["main"] == V2_ROWS
    assert load["problems_v1_test"] == {"task_id": ["he/1"], "prompt": ["def g():"], "tests": [["assert g()"]]}
    assert load["pairs_v2"]["kind"] == ["pvf", "qvs"]
    assert "int8" in load["exec_feature"]


def test_republishing_a_version_is_refused(hub_run):
    assert "already exists" in hub_run["republish"] and "immutable" in hub_run["republish"]
    assert "already exists" in hub_run["mirror_again"]


def test_cards_on_the_hub(hub_run):
    v1, v2 = _meta(hub_run["readme"]["v1"]), _meta(hub_run["readme"]["v2"])
    assert v1["codepref"]["version"] == "v1" and v2["codepref"]["version"] == "v2"
    assert [c["config_name"] for c in v2["configs"]] == ["pairs-all", "problems", "samples"]
    assert v2["codepref"]["statistics"]["samples"]["pass_rate"] == 0.5
    assert v2["codepref"]["statistics"]["pairs-all"]["pairs_per_kind"] == {"pvf": 1, "qvs": 1}
    assert v2["codepref"]["provenance"]["model"] == "tiny"  # kept from v1's card
    assert 'load_dataset("tester/prefs", "samples", revision="v2")' in hub_run["readme"]["v2"]
    for readme in hub_run["readme"].values():
        assert "hf_loopbacktesttoken" not in readme and "hf_token" not in readme


def test_mirror_both_ways(hub_run):
    assert hub_run["mirror_from"] == [["v1", "local"], ["v2", "local"]]
    assert hub_run["local_v1"] == V1_ROWS
    assert hub_run["local_versions"] == ["v1", "v2"]
    assert hub_run["mirror_to"] == [["v3", "hub"]]
    assert [v for v, _ in hub_run["mirror_to_copy"]] == ["v1", "v2", "v3"]
    assert hub_run["copy_v1"] == V1_ROWS
    assert hub_run["copy_v3_pairs"]["chosen"] == ["c", "d"]
    assert "samples/train-00000-of-00001.parquet" in hub_run["copy_tree_v1"]
    assert "pairs-all/train-00000-of-00001.parquet" not in hub_run["copy_tree_v1"]
