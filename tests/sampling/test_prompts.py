"""Prompt construction (chat vs completion, CodeDPO, DSTC), test parsing and config validation."""

import dataclasses

import pytest

from codepref.errors import ConfigError
from codepref.sampling import SampleConfig, build_request
from codepref.sampling.prompts import (
    CODEDPO_TEST_TEMPLATE,
    DSTC_RESPONSE_START,
    code_prompt,
    codedpo_test_prompt,
    dstc_prompt,
    is_code_prompt,
    parse_test_units,
    split_sections,
    task_description,
)

HE = {
    "task_id": "humaneval/53",
    "prompt": 'def add(x: int, y: int):\n    """Add two numbers x and y\n    >>> add(2, 3)\n    5\n    """\n',
    "instruction": "Complete the following Python function.\n\n```python\ndef add(x: int, y: int):\n```",
    "entry_point": "add",
}
MBPP = {
    "task_id": "mbpp/11",
    "prompt": "You are an expert Python programmer, and here is your task: Remove first and last occurrence "
    'of a char. Your code should pass these tests:\n\nassert remove_Occ("hello","l") == "heo"\n[BEGIN]\n',
    "instruction": "Write a python function to remove first and last occurrence of a given character "
    "from the "
    "string.\nThe function must be named `remove_Occ`.",
    "entry_point": "remove_Occ",
}


def test_code_prompts_chat_and_completion():
    assert code_prompt(HE, chat=False) == HE["prompt"]
    assert code_prompt(HE, chat=True) == [{"role": "user", "content": HE["instruction"]}]
    assert code_prompt(HE, chat=True, system_prompt="Be brief.")[0] == {
        "role": "system",
        "content": "Be brief.",
    }
    assert code_prompt({**HE, "instruction": ""}, chat=True)[-1]["content"] == HE["prompt"]


def test_is_code_prompt():
    assert is_code_prompt(HE["prompt"], "add")
    assert not is_code_prompt(HE["prompt"], "other")
    assert not is_code_prompt(MBPP["prompt"], "remove_Occ")
    assert not is_code_prompt("Write a function.")
    assert task_description(HE).startswith("```python\ndef add(")
    assert task_description(MBPP) == MBPP["instruction"]


def test_codedpo_prompt_is_the_papers_prompt_3():
    chat = codedpo_test_prompt(HE, chat=True)
    text = chat[0]["content"]
    assert text == (
        "Generate only assertion statements based on the following description. Do not generate any other "
        f"code:\n\n{task_description(HE)}\n\nGenerated Assertions:"
    )
    assert "def add(x: int, y: int)" in text  # the task as stated names the function; nothing is added
    assert "The main function name is" not in text
    completion = codedpo_test_prompt(MBPP, chat=False)
    assert completion.endswith("Generated Assertions:\n\nassert ")
    assert completion.startswith(CODEDPO_TEST_TEMPLATE.split("{")[0])


def test_dstc_prompt_has_four_parts_and_entry_point():
    messages = dstc_prompt(MBPP, chat=True)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert "[Reasoning]" in messages[0]["content"] and "[Tests]" in messages[0]["content"]
    assert messages[1]["content"].endswith("The main function name is `remove_Occ`.")
    assert "## Example 1" in messages[1]["content"] and "## Example 2" in messages[1]["content"]
    assert messages[2]["content"].startswith(DSTC_RESPONSE_START)
    text = dstc_prompt({**MBPP, "entry_point": None}, chat=False)
    assert text.endswith(f"### Response\n{DSTC_RESPONSE_START}\n")
    assert "The main function name is `None`" not in text


def test_split_sections():
    response = (
        f"{DSTC_RESPONSE_START}\n[Reasoning]\nthink\n[Implementation]\n"
        "```python\ndef f():\n    return 1\n```\n"
        "[Explanation]\nsimple\n[Tests]\n```python\nassert f() == 1\n```\n"
    )
    parts = split_sections(response)
    assert list(parts) == ["reasoning", "implementation", "explanation", "tests"]
    assert parts["reasoning"] == "think"
    assert "def f()" in parts["implementation"] and "assert" in parts["tests"]
    assert split_sections("no markers") == {}


def test_parse_test_units_keeps_parsing_asserts_dedupes_and_caps():
    text = """Here are some tests:
assert add(1, 2) == 3
assert add(1, 2) == 3
assert add(2,
           3) == 5
assert add(1, == 2
assert other(1) == 1
print(add(1, 1))
    assert add(0, 0) == 0
assert True"""
    assert parse_test_units(text, entry_point="add") == [
        "assert add(1, 2) == 3",
        "assert add(2,\n           3) == 5",
        "assert add(0, 0) == 0",
    ]
    assert len(parse_test_units(text)) == 5
    assert parse_test_units(text, entry_point="add", limit=2) == [
        "assert add(1, 2) == 3",
        "assert add(2,\n           3) == 5",
    ]
    with_imports = parse_test_units("import math\nassert add(math.pi, 0) == math.pi\n", entry_point="add")
    assert with_imports == ["import math\nassert add(math.pi, 0) == math.pi"]


def test_default_stops_per_mode():
    cfg = SampleConfig()
    prompt, stops, fence = build_request(HE, cfg, chat=True)
    assert isinstance(prompt, list) and stops == () and fence is True
    _, stops, fence = build_request(HE, cfg, chat=False)
    assert "\ndef " in stops and fence is False
    _, stops, _ = build_request(MBPP, cfg, chat=False)
    assert "[DONE]" in stops and "\ndef " not in stops
    _, stops, fence = build_request(MBPP, SampleConfig(target="tests", test_prompt="dstc"), chat=True)
    assert "## Example 3" in stops and fence is False
    _, stops, fence = build_request(HE, SampleConfig(stop=["X"], stop_at_code_block=False), chat=True)
    assert stops == ("X",) and fence is False


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be a positive integer"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"backend": "llama"}, "backend must be one of"),
        ({"target": "both"}, "target"),
        ({"test_prompt": "codet"}, "test_prompt"),
        ({"chat": "maybe"}, "chat must be auto"),
        ({"stop": [""]}, "stop"),
        ({"device": "tpu"}, "device"),
        ({"backend": "openai", "api_base": "localhost:8000"}, "api_base"),
        ({"seed": -1}, "seed"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SampleConfig(**kwargs)


def test_config_fields_have_help_and_normalise():
    assert all(f.metadata.get("help") for f in dataclasses.fields(SampleConfig))
    assert SampleConfig(chat=True).chat_mode is True
    assert SampleConfig(chat="False").chat_mode is False
    assert SampleConfig().chat_mode is None
    assert SampleConfig(stop="[DONE]").stop == ["[DONE]"]
