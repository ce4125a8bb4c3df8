import json

import pytest

from codepref.errors import ConfigError, DataError
from codepref.provenance import get_provenance
from codepref.sampling.backends import GenerationBackend
from codepref.sampling.seeds import SeedConfig, seed_problems


class Scripted(GenerationBackend):
    """Answers the concept prompt with a list and the instruction prompt with a task; records prompts."""

    name = "scripted"

    def __init__(self):
        self.prompts = []

    def generate(self, prompts, n, params, seeds):
        out = []
        for p in prompts:
            text = p[-1]["content"]
            self.prompts.append(text)
            if "### Concepts" in text:
                out.append(["recursion, memoisation\n\n## Example 3\nnoise"])
            else:
                out.append(["Write a Python function `fib(n)` returning the n-th Fibonacci number.\n### Noise"])
        return out

    def has_chat_template(self):
        return True

    def identity(self):
        return {"backend": "scripted"}

    def close(self):
        pass


def test_snippet_to_concepts_to_task(tmp_path):
    path = tmp_path / "snippets.jsonl"
    path.write_text("".join(json.dumps({"content": c}) + "\n" for c in ["def f(n):\n    return f(n - 1)", "x = 1"]))
    backend = Scripted()
    ds = seed_problems(SeedConfig(source=str(path)), backend=backend)
    assert ds["task_id"] == ["seed/0", "seed/1"]
    row = ds[0]
    assert row["concepts"] == "recursion, memoisation"
    assert row["instruction"] == "Write a Python function `fib(n)` returning the n-th Fibonacci number."
    assert row["entry_point"] == "fib" and row["tests"] == [] and row["snippet"].startswith("def f(n)")
    assert "def f(n):\n    return f(n - 1)" in backend.prompts[0]  # the snippet goes into LLM Prompt 1
    assert "concepts: recursion, memoisation" in backend.prompts[2]  # the concepts into LLM Prompt 2
    assert get_provenance(ds)["seed"]["source"] == str(path)


def test_seed_errors(tmp_path):
    with pytest.raises(ConfigError, match="snippet source"):
        SeedConfig()
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"code": "x"}) + "\n")
    with pytest.raises(DataError, match="no column 'content'"):
        seed_problems(SeedConfig(source=str(path)), backend=Scripted())
