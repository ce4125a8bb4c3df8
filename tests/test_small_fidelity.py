"""Issue 18, item 8: the smaller deviations, each against a hand-computed case."""

from codepref.evaluation.metrics import compile_rate, compiles, pass_at_k
from codepref.sampling.extraction import drop_main_guard, extract_code
from codepref.training.dynamic import unique_draw


def test_per_epoch_draws_are_unique_until_the_pool_is_used_up():
    for size in (1, 2, 5):
        for index in range(4):
            draws = [unique_draw(7, epoch, index, size) for epoch in range(3 * size)]
            for cycle in range(3):  # every cycle of `size` epochs uses each item exactly once
                assert sorted(draws[cycle * size : (cycle + 1) * size]) == list(range(size))
    assert [unique_draw(7, e, 0, 5) for e in range(5)] == [unique_draw(7, e, 0, 5) for e in range(5)]  # seeded
    assert [unique_draw(1, e, 0, 5) for e in range(10)] != [unique_draw(2, e, 0, 5) for e in range(10)]


def test_pass_at_k_beyond_n_is_pass_at_n_not_one():
    assert pass_at_k(5, 0, 10) == 0.0  # code_eval's estimator says 1.0 here (n - c < k)
    assert pass_at_k(5, 2, 10) == 1.0
    assert pass_at_k(5, 2, 5) == 1.0 and abs(pass_at_k(5, 2, 1) - 0.4) < 1e-12


def test_compiles_agrees_with_compile():
    for program, ok in [
        ("def f():\n    return 1\n", True),
        ("return 1\n", False),  # parses, but compile() rejects a top-level return
        ("break\n", False),
        ("def f():\n    nonlocal x\n", False),
        ("def f(:\n", False),
        ("x = 1\0", False),
    ]:
        assert compiles(program) is ok, program
    assert compile_rate(["return 1\n", "x = 1\n"]) == 0.5


def test_chat_extraction_keeps_imports_of_other_blocks_and_drops_main_demos():
    answer = (
        "First the import:\n```python\nimport math\nfrom typing import List\n```\n"
        "Then the function:\n```python\ndef hyp(a: float, b: float) -> float:\n    return math.sqrt(a * a + b * b)\n\n"
        'if __name__ == "__main__":\n    print(hyp(float(input()), 4))\n```\n'
    )
    program = extract_code(answer, entry_point="hyp", chat=True)
    assert program == (
        "import math\nfrom typing import List\n\n"
        "def hyp(a: float, b: float) -> float:\n    return math.sqrt(a * a + b * b)\n"
    )
    assert drop_main_guard("x = 1\nif '__main__' == __name__:\n    x = 2\ny = x\n") == "x = 1\ny = x\n"
    assert drop_main_guard("if __name__ == 'x':\n    pass\n") == "if __name__ == 'x':\n    pass\n"


def test_code_optimise_validates_on_mbpp_validation_split():
    from datasets import Dataset

    from codepref.problems.mbpp import mbpp_split_of
    from codepref.training.data import split_by_source

    assert [mbpp_split_of(t) for t in ("mbpp/5", "mbpp/11", "mbpp/511", "mbpp/600", "mbpp/601", "humaneval/3")] == [
        "prompt", "test", "validation", "validation", "train", None,
    ]  # fmt: skip
    ds = Dataset.from_list([{"task_id": t, "x": i} for i, t in enumerate(["mbpp/601", "mbpp/520", "mbpp/700"])])
    train, val = split_by_source(ds, "validation")
    assert train["task_id"] == ["mbpp/601", "mbpp/700"] and val["task_id"] == ["mbpp/520"]
