"""Code-Optimise §4.3 length: "the number of characters of all working solutions" — the model's code only."""

from datasets import Dataset

from codepref.evaluation.metrics import solution_length
from codepref.evaluation.report import run_metrics

PROMPT = 'def add(a, b):\n    """Add two numbers."""\n'


def test_a_completion_model_solution_does_not_count_its_prompt():
    body = "    return a + b\n"
    assert solution_length(PROMPT + body, PROMPT) == len(body) == 17
    assert solution_length(PROMPT.rstrip() + "\n" + body, PROMPT + "\n") == len(body)  # prompt's trailing space
    chat = "def add(x, y):\n    return x + y\n"  # a chat model's own full program: all of it is its code
    assert solution_length(chat, PROMPT) == len(chat)
    assert solution_length(chat) == len(chat)


def test_run_metrics_median_length_excludes_the_prompt():
    bodies = ["    return a + b\n", "    return b + a  # commutative\n", "    return 0\n"]
    ds = Dataset.from_list(
        [{"task_id": "t/0", "prompt": PROMPT, "samples": [PROMPT + b for b in bodies], "passed": [True, True, False]}]
    )
    # working solutions: 17 and 32 characters → median 24.5 (the prompt's 42 characters are not counted)
    assert run_metrics(ds, ks=[1])["median_length"] == 24.5
