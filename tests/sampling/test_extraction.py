"""Code extraction on a table of real-looking model outputs (chat and completion models)."""

import pytest

from codepref.sampling.extraction import (
    add_prompt_preamble,
    cut_after_code_block,
    extract_code,
    fenced_blocks,
    syntax_ok,
    truncate_at_stops,
)

HE_PROMPT = '''from typing import List


def below_zero(operations: List[int]) -> bool:
    """ Detect if the balance ever falls below zero.
    >>> below_zero([1, 2, -4, 5])
    True
    """
'''
HE_BODY = (
    "    balance = 0\n    for op in operations:\n        balance += op\n"
    "        if balance < 0:\n            return True\n    return False\n"
)
HE_FUNC = "def below_zero(operations: List[int]) -> bool:\n" + HE_BODY
HE_FULL = "from typing import List\n\n\n" + HE_FUNC

HELPER_PROMPT = '''def is_palindrome(string: str) -> bool:
    """ Test if given string is a palindrome """
    return string == string[::-1]


def make_palindrome(string: str) -> str:
    """ Find the shortest palindrome that begins with a supplied string. """
'''
MAKE_PAL = (
    "def make_palindrome(string: str) -> str:\n    i = 0\n    while not is_palindrome(string[i:]):\n"
    "        i += 1\n    return string + string[:i][::-1]\n"
)

MBPP_PROMPT = (
    "You are an expert Python programmer, and here is your task: Write a function to find the shared "
    "elements. Your code should pass these tests:\n\nassert similar((3, 4), (4, 5)) == (4,)\n[BEGIN]\n"
)
MBPP_CODE = "def similar(a, b):\n    return tuple(set(a) & set(b))\n"

# (id, completion, prompt, entry_point, chat, expected program)
CASES = [
    (
        "chatty-prose-and-fence",
        "Sure! Here is the function you asked for:\n\n```python\n" + HE_FULL + "```\n\nThis works by keeping "
        "a running balance and returning True as soon as it drops below zero.",
        HE_PROMPT,
        "below_zero",
        True,
        HE_FULL,
    ),
    (
        "two-fences-pick-the-entry-point",
        "First, an example usage:\n```python\nprint(below_zero([1, -2]))\n```\nAnd the implementation:\n"
        "```python\n" + HE_FULL + "```\n",
        HE_PROMPT,
        "below_zero",
        True,
        HE_FULL,
    ),
    (
        "dropped-imports-are-re-added",
        "```python\n" + HE_FUNC + "```",
        HE_PROMPT,
        "below_zero",
        True,
        "from typing import List\n\n" + HE_FUNC,
    ),
    (
        "no-fence-prose-around-code",
        "Here is the solution:\n" + HE_FULL + "\nThe function iterates over the operations.",
        HE_PROMPT,
        "below_zero",
        True,
        HE_FULL,
    ),
    (
        "body-only-in-fence",
        "```python\n" + HE_BODY + "```",
        HE_PROMPT,
        "below_zero",
        True,
        HE_PROMPT + HE_BODY,
    ),
    (
        "body-only-dedented",
        "```\nbalance = 0\nfor op in operations:\n    balance += op\n"
        "    if balance < 0:\n        return True\n"
        "return False\n```",
        HE_PROMPT,
        "below_zero",
        True,
        HE_PROMPT + HE_BODY,
    ),
    (
        "unterminated-fence",
        "Let me write it.\n```python\n" + HE_FULL,
        HE_PROMPT,
        "below_zero",
        True,
        HE_FULL,
    ),
    (
        "untagged-fence-and-a-bash-block",
        "Run `pip install nothing` first:\n```bash\npip install nothing\n```\n```\n" + HE_FULL + "```",
        HE_PROMPT,
        "below_zero",
        True,
        HE_FULL,
    ),
    (
        "helper-from-prompt-re-added",
        "```python\n" + MAKE_PAL + "```",
        HELPER_PROMPT,
        "make_palindrome",
        True,
        'def is_palindrome(string: str) -> bool:\n    """ Test if given string is a palindrome """\n'
        "    return string == string[::-1]\n\n" + MAKE_PAL,
    ),
    (
        "mbpp-chat-no-prompt-repairs",
        "```python\nimport math\n" + MBPP_CODE + "\nassert similar((3, 4), (4, 5)) == (4,)\n```",
        MBPP_PROMPT,
        "similar",
        True,
        "import math\n" + MBPP_CODE + "\nassert similar((3, 4), (4, 5)) == (4,)\n",
    ),
    (
        "humaneval-completion-cut-at-next-def",
        HE_BODY + "\n\ndef main():\n    print(below_zero([1]))\n",
        HE_PROMPT,
        "below_zero",
        False,
        HE_PROMPT + HE_BODY,
    ),
    (
        "humaneval-completion-cut-at-if-main",
        HE_BODY + "\nif __name__ == '__main__':\n    import doctest\n",
        HE_PROMPT,
        "below_zero",
        False,
        HE_PROMPT + HE_BODY,
    ),
    (
        "humaneval-completion-cut-at-print-and-assert",
        HE_BODY + "\nprint(below_zero([1, -2]))\nassert below_zero([-1])\n",
        HE_PROMPT,
        "below_zero",
        False,
        HE_PROMPT + HE_BODY,
    ),
    (
        "mbpp-done-style",
        MBPP_CODE + "[DONE]\nYou are an expert Python programmer, and here is your task: ...",
        MBPP_PROMPT,
        "similar",
        False,
        MBPP_CODE,
    ),
    (
        "mbpp-completion-keeps-helpers-drops-asserts",
        "def helper(x):\n    return set(x)\n\n" + MBPP_CODE + "\nassert similar((1,), (1,)) == (1,)\n",
        MBPP_PROMPT,
        "similar",
        False,
        "def helper(x):\n    return set(x)\n\n" + MBPP_CODE,
    ),
    (
        "empty-answer",
        "",
        HE_PROMPT,
        "below_zero",
        True,
        "",
    ),
]


@pytest.mark.parametrize(
    ("completion", "prompt", "entry_point", "chat", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_extraction_table(completion, prompt, entry_point, chat, expected):
    program = extract_code(completion, prompt=prompt, entry_point=entry_point, chat=chat)
    assert program == expected
    if expected:
        assert syntax_ok(program)


def test_extracted_humaneval_programs_run():
    namespace: dict = {}
    exec(extract_code("```python\n" + HE_FUNC + "```", prompt=HE_PROMPT, entry_point="below_zero"), namespace)
    assert namespace["below_zero"]([1, -2]) is True
    namespace = {}
    exec(
        extract_code("```python\n" + MAKE_PAL + "```", prompt=HELPER_PROMPT, entry_point="make_palindrome"),
        namespace,
    )
    assert namespace["make_palindrome"]("cat") == "catac"


def test_helpers():
    assert truncate_at_stops("abc\ndef x", ["\ndef ", "zz"]) == "abc"
    assert truncate_at_stops("abc", []) == "abc"
    assert cut_after_code_block("a\n```python\nx = 1\n```\nmore ```") == "a\n```python\nx = 1\n```"
    assert cut_after_code_block("```python\nx = 1\n") == "```python\nx = 1\n"
    assert fenced_blocks("```text\nhello\n```") == ["hello\n"]  # only non-python blocks: keep them
    assert not syntax_ok("def f(:\n") and not syntax_ok("x = '\0'")
    # a program that does not parse is left alone
    assert add_prompt_preamble("def f(:", HE_PROMPT) == "def f(:"
