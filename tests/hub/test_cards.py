"""Dataset cards: templates per kind, statistics, column docs, provenance, validation."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from datasets import Dataset, DatasetDict, Features, List, Value
from huggingface_hub import DatasetCard, DatasetCardData

import codepref.hub.cards as cards_mod
from codepref.errors import ConfigError, DataError
from codepref.hub.cards import (
    CardInfo,
    add_config_metadata,
    cards_dir,
    column_docs,
    kind_of,
    render_card,
    scrub,
    size_category,
    validate_card,
)
from codepref.stats import dataset_stats

SPEC_COLUMNS = [
    "task_id",
    "prompt",
    "instruction",
    "entry_point",
    "tests",
    "test_setup",
    "io_tests",
    "canonical_solution",
    "completions",
    "samples",
    "gen_tests",
    "exec_matrix",
    "gen_exec_matrix",
    "passed",
    "runtime_ns",
    "runtime_cov",
    "cost",
    "score",
    "test_score",
    "pairs",
]
PAIR = {"chosen": Value("int32"), "rejected": Value("int32"), "kind": Value("string")}


def card_for(configs: dict[str, Dataset], repo: str = "org/ds", version: str = "v1", card=None) -> str:
    meta: dict = {}
    dds = {name: DatasetDict({"train": ds}) for name, ds in configs.items()}
    for name, dd in dds.items():
        add_config_metadata(meta, name, dd, {"x": 100})
    return render_card(meta, repo=repo, version=version, new_configs=dds, card=card)


def candidates() -> Dataset:
    return Dataset.from_dict(
        {
            "task_id": ["a", "b"],
            "samples": [["x", "y", "z"], ["w"]],
            "passed": [[True, True, False], [False]],
            "runtime_ns": [[1.0, 2.0, None], [None]],
            "pairs": [
                [
                    {"chosen": 0, "rejected": 2, "kind": "pvf"},
                    {"chosen": 0, "rejected": 1, "kind": "qvs"},
                    {"chosen": 1, "rejected": 2, "kind": "pvf"},
                ],
                [],
            ],
        },
        features=Features(
            {
                "task_id": Value("string"),
                "samples": List(Value("string")),
                "passed": List(Value("bool")),
                "runtime_ns": List(Value("float64")),
                "pairs": List(PAIR),
            }
        ),
    )


def test_every_spec_column_is_documented_with_outcome_codes():
    docs = column_docs()
    assert set(SPEC_COLUMNS) <= set(docs)
    for col in ("exec_matrix", "gen_exec_matrix"):
        assert "0 pass, 1 fail, 2 error, 3 timeout, 4 syntax/compile error, 5 killed by a limit" in docs[col]
    templates = {p.stem for p in cards_dir().glob("*.md")}
    assert {"base", "problems", "samples", "pairs", "sft", "kto", "candidates"} <= templates


def test_statistics():
    stats = dataset_stats(DatasetDict({"train": candidates()}))  # the same function as `codepref stats`
    assert stats["rows"] == 2 and stats["solutions_total"] == 4 and stats["solutions_passing"] == 2
    assert stats["pass_rate"] == 0.5 and stats["problems_solved"] == 1
    assert stats["pairs_total"] == 3 and stats["pairs_per_kind"] == {"pvf": 2, "qvs": 1}
    kto = Dataset.from_dict({"prompt": ["p"] * 3, "completion": ["c"] * 3, "label": [True, False, True]})
    assert dataset_stats(DatasetDict({"train": kto}))["desirable"] == 2
    trusted = Dataset.from_dict({"task_id": ["a", "b"], "test_trust": [["judged", "in-process"], ["judged"]]})
    stats = dataset_stats(DatasetDict({"train": trusted}))
    assert stats["tests_judged"] == 2 and stats["tests_in_process"] == 1
    sliced = candidates().select([1])  # an indices mapping must not leak rows
    assert dataset_stats(DatasetDict({"train": sliced.flatten_indices()}))["solutions_total"] == 1


def test_card_renders_all_sections_and_validates():
    sft = Dataset.from_dict({"prompt": ["p"], "completion": ["c"]})
    kto = Dataset.from_dict({"prompt": ["p"], "completion": ["c"], "label": [False]})
    problems = Dataset.from_dict(
        {"task_id": ["a"], "prompt": ["def f"], "tests": [["assert f()"]], "entry_point": ["f"]}
    )
    prov = {
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "model_revision": "abc123",
        "sampling": {"n": 8, "temperature": 0.6, "top_p": 0.95, "seed": 0},
        "source_dataset": "openai_humaneval",
        "source_revision": "v1.0",
        "sandbox": {"isolation": "bwrap+seccomp", "limits": {"memory_mb": 512, "cpu_s": 10}},
        "timing": {"mode": "code-optimise", "cpu": "Intel Xeon"},
        "pipeline_config": {"pairs": {"policy": "dstc"}},
        "token": "hf_abcdefghijklmnopqrstuvwxyz0123",
    }
    text = card_for(
        {"candidates": candidates(), "sft-top25": sft, "kto": kto, "problems": problems},
        card=CardInfo(pretty_name="Demo", license="mit", tags=["humaneval"], provenance=prov),
    )
    meta = validate_card(text)
    assert meta["license"] == "mit" and meta["task_categories"] == ["text-generation"]
    assert meta["size_categories"] == ["n<1K"] and "humaneval" in meta["tags"]
    assert meta["codepref"]["kinds"] == {
        "candidates": "candidates",
        "sft-top25": "sft",
        "kto": "kto",
        "problems": "problems",
    }
    for expected in (
        "### `candidates` — candidates",
        "### `sft-top25` — supervised fine-tuning",
        "### `kto` — unpaired (KTO)",
        "### `problems` — problems",
        'load_dataset("org/ds", "sft-top25", revision="v1")',
        "| pairs of kind `pvf` | 2 |",
        "| pass rate | 50.00% |",
        "`list[{chosen: int32, rejected: int32, kind: string}]`",
        "SmolLM2-135M-Instruct",
        "bwrap+seccomp",
        "code-optimise",
        "Intel Xeon",
        "openai_humaneval",
        "temperature: 0.6",
        "policy: dstc",
        "codepref version",
        "**5** killed by a limit",
    ):
        assert expected in text, expected
    assert "hf_abcdefghijklmnop" not in text
    for title in ("Code-Optimise", "IotaCode", "DSTC", "CodeDPO"):
        assert re.search(rf"title\s*=\s*{{{title}", text), title
    assert "2406.12502" in text
    card = DatasetCard(text)  # huggingface_hub parses it, and so does DatasetCardData
    assert isinstance(card.data, DatasetCardData) and card.data.pretty_name == "Demo"


def test_later_publish_keeps_earlier_statistics_and_provenance():
    first = card_for({"samples": candidates()}, card={"provenance": {"model": "m1"}})
    meta = yaml.safe_load(first.split("---\n")[1])
    pairs = Dataset.from_dict({"prompt": ["p"], "chosen": ["a"], "rejected": ["b"]})
    dd = DatasetDict({"train": pairs})
    add_config_metadata(meta, "pairs-all", dd, {"x": 1})
    second = render_card(meta, repo="org/ds", version="v2", new_configs={"pairs-all": dd})
    meta2 = validate_card(second)
    assert set(meta2["codepref"]["statistics"]) == {"samples", "pairs-all"}
    assert meta2["codepref"]["provenance"]["model"] == "m1" and meta2["codepref"]["version"] == "v2"


def test_validation_rejects_broken_cards():
    good = card_for({"samples": candidates()})
    with pytest.raises(DataError, match="no YAML front matter"):
        validate_card("# just text\n")
    with pytest.raises(DataError, match="does not parse"):
        validate_card("---\nlicense: [unclosed\n---\nbody\n")
    with pytest.raises(DataError, match="missing metadata key 'license'"):
        validate_card(good.replace("license: other\n", ""))
    with pytest.raises(DataError, match="column 'runtime_ns' is not documented"):
        validate_card(good.replace("`runtime_ns`", "runtime"))
    with pytest.raises(DataError, match="no load_dataset snippet"):
        validate_card(good.replace('"samples"', "samples"))
    with pytest.raises(DataError, match="invalid size category"):
        validate_card(good.replace("- n<1K", "- tiny"))


def test_helpers():
    assert kind_of("pairs-pvf") == "pairs" and kind_of("sft-top25") == "sft" and kind_of("candidates") == "candidates"
    assert kind_of("custom", ["prompt", "chosen", "rejected"]) == "pairs"
    assert kind_of("custom", ["prompt", "completion", "label"]) == "kto"
    assert kind_of("whatever", ["x"]) == "generic"
    assert size_category(999) == "n<1K" and size_category(100_000) == "100K<n<1M"
    assert scrub({"HF_TOKEN": "x", "nested": {"password": 1, "ok": "hf_abcdefghijklmnopqrstuvwxyz"}}) == {
        "nested": {"ok": "[redacted]"}
    }
    assert CardInfo.coerce({"model": "m", "license": "mit"}).provenance == {"model": "m"}
    assert Path(cards_dir(), "columns.yaml").is_file()


def test_cards_are_package_data_found_next_to_the_module(tmp_path, monkeypatch):
    # A non-editable install has no source tree: the templates ship inside the package (package data).
    source = cards_dir()
    installed = tmp_path / "site-packages" / "codepref" / "hub" / "dataset_cards"
    shutil.copytree(source, installed)
    monkeypatch.delenv("CODEPREF_CARDS_DIR", raising=False)
    monkeypatch.setattr(cards_mod, "__file__", str(installed.parent / "cards.py"))
    assert cards_dir() == installed
    monkeypatch.setattr(cards_mod, "__file__", str(tmp_path / "elsewhere" / "cards.py"))
    with pytest.raises(ConfigError, match="dataset card templates not found"):
        cards_dir()
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert "hub/dataset_cards/*" in pyproject["tool"]["setuptools"]["package-data"]["codepref"]
