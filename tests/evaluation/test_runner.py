"""codepref eval end to end with a canned generation backend (real sandbox, real metrics)."""

import json

import pytest

from codepref.cli import main
from codepref.errors import ConfigError
from codepref.evaluation import EvalConfig, evaluate, get_task
from codepref.sampling import SampleConfig
from codepref.sampling.backends import GenerationBackend

GOOD = {
    "humaneval/0": "```python\nfrom typing import List\n\ndef has_close_elements(numbers: List[float], "
    "threshold: float) -> bool:\n    return any(abs(a - b) < threshold for i, a in enumerate(numbers) "
    "for j, b in enumerate(numbers) if i != j)\n```",
    "humaneval/1": "```python\ndef separate_paren_groups(s):\n    return []\n```",
}


class Canned(GenerationBackend):
    """Returns the known answer for the first sample of a problem and junk for the rest."""

    name = "canned"

    def __init__(self, answers):
        self.answers = answers

    def generate(self, prompts, n, params, seeds):
        out = []
        for p in prompts:
            text = p[-1]["content"] if isinstance(p, list) else p
            key = "humaneval/0" if "has_close_elements" in text else "humaneval/1"
            out.append([self.answers[key]] + ["```python\ndef nope(:\n```"] * (n - 1))
        return out

    def has_chat_template(self):
        return True

    def identity(self):
        return {"backend": "canned", "model": "canned"}

    def close(self):
        pass


def test_eval_run_metrics_and_files(tmp_path):
    cfg = EvalConfig(
        sampling=SampleConfig(model="canned", n=4),
        task="humaneval",
        limit=2,
        ks=[1, 2],
        greedy=True,
        output=str(tmp_path / "run"),
    )
    ds, record = evaluate(cfg, backend=Canned(GOOD))
    m = record["metrics"]
    assert ds["passed"] == [[True, False, False, False], [False, False, False, False]]
    assert m["pass@k"]["1"] == pytest.approx((1 / 4 + 0) / 2)
    assert m["pass@k"]["2"] == pytest.approx((1 - 3 / 6 + 0) / 2)  # 1 - C(3,2)/C(4,2)
    assert m["greedy_pass@1"] == 0.5
    assert m["compile_rate"] == pytest.approx(2 / 8)
    assert m["solved"] == 1 and m["problems"] == 2
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["task"] == "humaneval" and saved["settings"]["sampling"]["n"] == 4 and "codepref_version" in saved


def test_compare_cli_writes_report(tmp_path, capsys):
    for name, answers in (("base", GOOD), ("better", {**GOOD, "humaneval/1": GOOD["humaneval/1"]})):
        evaluate(
            EvalConfig(
                sampling=SampleConfig(model=name, n=2), task="humaneval", limit=2, ks=[1], output=str(tmp_path / name)
            ),
            backend=Canned(answers),
        )
    assert (
        main(
            [
                "compare",
                str(tmp_path / "base"),
                str(tmp_path / "better"),
                "--base",
                str(tmp_path / "base"),
                "--output",
                str(tmp_path / "report"),
                "--ks",
                "[1]",
            ]
        )
        == 0
    )
    assert (tmp_path / "report" / "report.md").exists() and (tmp_path / "report" / "pass_at_k.png").exists()
    assert "better" in capsys.readouterr().out


def test_task_registry():
    assert get_task("humaneval").offline
    assert get_task("codecontests").public_tests == "public_io_tests"
    with pytest.raises(ConfigError, match="unknown task 'humaneval2'"):
        EvalConfig(task="humaneval2")


@pytest.mark.slow
def test_embedded_model_on_humaneval_end_to_end(tmp_path):
    """The embedded SmolLM2 model, two HumanEval problems, n=2: offline, CPU."""
    cfg = EvalConfig(
        task="humaneval",
        task_ids=[22, 53],
        sampling=SampleConfig(n=2, max_new_tokens=128),
        ks=[1],
        output=str(tmp_path / "smol"),
    )
    ds, record = evaluate(cfg)
    assert len(ds) == 2 and all(len(s) == 2 for s in ds["samples"])
    assert 0.0 <= record["metrics"]["pass@k"]["1"] <= 1.0
