"""Client side of the Hub tests, run in a subprocess whose env points the real clients at the loopback server.

A separate process is the robust way to use ``HF_ENDPOINT`` / ``HF_HUB_OFFLINE=0``: huggingface_hub and
datasets read them at import time, while the rest of the suite runs offline. Usage:
``python hub_client.py OUT.json``; everything observed goes into OUT.json for the tests to assert on.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path


def rows(ds) -> dict:
    return ds.to_dict()


def main(out_path: str) -> None:
    import datasets
    from datasets import Dataset, DatasetDict, Features, List, Value, load_dataset
    from huggingface_hub import DatasetCard, HfApi

    from codepref.errors import CodeprefError
    from codepref.hub import (
        HubStore,
        LocalStore,
        mirror_from_hub,
        mirror_to_hub,
        publish,
        pull,
        validate_card,
        versions,
    )

    datasets.disable_progress_bars()
    out: dict = {}
    repo = "tester/prefs"
    hub, local = HubStore(), LocalStore(os.environ["CODEPREF_HUB"])
    feats = Features(
        {
            "task_id": Value("string"),
            "samples": List(Value("string")),
            "exec_matrix": List(List(Value("int8"))),
            "passed": List(Value("bool")),
        }
    )
    samples_v1 = Dataset.from_dict(
        {
            "task_id": ["he/0", "he/1"],
            "samples": [["a", "b"], ["c"]],
            "exec_matrix": [[[0, 1], [1, 3]], [[4]]],
            "passed": [[True, False], [False]],
        },
        features=feats,
    )
    problems = DatasetDict(
        {
            "train": Dataset.from_dict({"task_id": ["he/0"], "prompt": ["def f():"], "tests": [["assert f()"]]}),
            "test": Dataset.from_dict({"task_id": ["he/1"], "prompt": ["def g():"], "tests": [["assert g()"]]}),
        }
    )
    card = {
        "pretty_name": "Prefs",
        "provenance": {"model": "tiny", "hf_token": os.environ["HF_TOKEN"], "sampling": {"n": 2, "temperature": 0.6}},
    }
    v1 = publish({"samples": samples_v1, "problems": problems}, repo, version="v1", store="hub", card=card)
    out["v1"] = {"commit": v1.commit, "configs": list(v1.configs)}

    api = HfApi()
    api.create_branch(repo, branch="dev", revision="v1", repo_type="dataset")
    samples_v2 = samples_v1.select([1]).map(
        lambda r: {
            "samples": r["samples"] + ["d"],
            "exec_matrix": r["exec_matrix"] + [[0]],
            "passed": r["passed"] + [True],
        }
    )
    pairs = Dataset.from_dict(
        {"prompt": ["p", "q"], "chosen": ["c", "d"], "rejected": ["r", "s"], "kind": ["pvf", "qvs"]}
    )
    v2 = publish({"samples": samples_v2, "pairs-all": pairs}, repo, version="v2", store=hub)
    out["v2"] = {"commit": v2.commit, "configs": list(v2.configs)}

    try:
        publish(samples_v2, repo, config="samples", version="v1", store=hub)
        out["republish"] = "accepted"
    except CodeprefError as e:
        out["republish"] = str(e)

    refs = api.list_repo_refs(repo, repo_type="dataset")
    out["refs"] = {
        "branches": sorted(b.name for b in refs.branches),
        "tags": {t.name: t.target_commit for t in refs.tags},
    }
    out["versions"] = [(v.version, v.commit) for v in versions(repo, store="hub")]
    out["tree_v2"] = sorted(
        f.path for f in api.list_repo_tree(repo, repo_type="dataset", revision="v2", recursive=True)
    )
    out["load"] = {
        "v1": rows(load_dataset(repo, "samples", revision="v1", split="train")),
        "v2": rows(load_dataset(repo, "samples", revision="v2", split="train")),
        "dev": rows(load_dataset(repo, "samples", revision="dev", split="train")),
        "main": rows(load_dataset(repo, "samples", split="train")),
        "problems_v1_test": rows(pull(repo, config="problems", revision="v1", split="test", store="hub")),
        "pairs_v2": rows(pull(repo, config="pairs-all", revision="v2", store="hub")["train"]),
        "exec_feature": str(load_dataset(repo, "samples", revision="v1", split="train").features["exec_matrix"]),
    }
    readme_v1 = Path(api.hf_hub_download(repo, "README.md", repo_type="dataset", revision="v1")).read_text()
    readme_v2 = Path(api.hf_hub_download(repo, "README.md", repo_type="dataset", revision="v2")).read_text()
    validate_card(readme_v2, online=True)  # offline checks + the server's /api/validate-yaml
    DatasetCard(readme_v2).validate(repo_type="dataset")
    out["readme"] = {"v1": readme_v1, "v2": readme_v2}

    out["mirror_from"] = [(p.version, p.store) for p in mirror_from_hub(repo, local=local, hub=hub)]
    out["local_v1"] = rows(pull(repo, config="samples", revision="v1", store=local, split="train"))
    out["local_versions"] = [v.version for v in versions(repo, store=local)]
    publish(pairs, repo, config="pairs-all", version="v3", store=local)
    out["mirror_to"] = [(p.version, p.store) for p in mirror_to_hub(repo, local=local, hub=hub)]
    out["mirror_to_copy"] = [
        (p.version, p.commit) for p in mirror_to_hub(repo, hub_repo="tester/copy", local=local, hub=hub)
    ]
    out["copy_v1"] = rows(load_dataset("tester/copy", "samples", revision="v1", split="train"))
    out["copy_v3_pairs"] = rows(load_dataset("tester/copy", "pairs-all", revision="v3", split="train"))
    out["copy_tree_v1"] = sorted(
        f.path for f in api.list_repo_tree("tester/copy", repo_type="dataset", revision="v1", recursive=True)
    )
    try:
        mirror_to_hub(repo, version="v1", local=local, hub=hub)
        out["mirror_again"] = "accepted"
    except CodeprefError as e:
        out["mirror_again"] = str(e)
    Path(out_path).write_text(json.dumps(out))


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Exception:
        traceback.print_exc()
        sys.exit(1)
