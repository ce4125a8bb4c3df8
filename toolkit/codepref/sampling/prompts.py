"""Prompt templates for code and test generation, and parsing of generated tests.

A prompt is either a string (a completion model continues it) or a list of chat messages
(``[{"role": ..., "content": ...}]``; a final ``assistant`` message is a pre-filled start
of the answer that the model continues).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

Message = dict[str, str]
Prompt = str | list[Message]

# CodeDPO (Zhang et al., 2024), Appendix, "LLM Prompt 3 for Test Case Generation".
CODEDPO_TEST_TEMPLATE = (
    "Generate only assertion statements based on the following description. Do not generate any other "
    "code:\n\n{description}\n\nGenerated Assertions:\n\n"
)

# DSTC (Liu et al., 2024), Appendix B: the self-align prompt with one worked example and the
# entry point named, ending with the sentence that fixes the four-part response format. The
# example is the paper's, corrected: its implementation now does what its instruction says (the
# continuation bit on the 5-bit chunk, before adding 63; chunks in order) and passes its tests.
DSTC_SYSTEM = (
    "Provide the best response to a given instruction. Follow the following steps to craft your response "
    "to fill Example 2:\n"
    "1. First give a signal [Reasoning], then reason about the given instruction\n"
    "2. First give a signal [Implementation], then provide a high-quality solution for the instruction.\n"
    "3. First give a signal [Explanation], then offer a concise explanation.\n"
    "4. First give a signal [Tests], write comprehensive and diverse tests carefully to verify the "
    "correctness your solution. Note that the tests should import all the required packages.\n"
)
DSTC_RESPONSE_START = (
    "We will organize our response by four parts: [Reasoning], [Implementation], [Explanation], and [Tests]."
)
DSTC_EXAMPLE = f"""## Example 1
### Instruction
Create a Python function to encode an integer into a sequence of encoded characters, where each \
character represents a 5-bit chunk of the integer. The ASCII value of each chunk character is formed by \
adding 63 to the 5-bit chunk's value. For all chunks except the last one, set the 6th bit to 1 to indicate \
continuation. Employ bitwise operations for this encoding process.
The main function name is `encode_integer_to_chars`.
### Response
{DSTC_RESPONSE_START}
[Reasoning]
To encode an integer into 5-bit chunks: extract each chunk with `& 31`, set the continuation bit with `| 32` \
for every chunk but the last, shift right by 5, map each chunk to a character by adding 63, and assemble the \
characters in order.
[Implementation]
Here's how you can implement this function:
```python
def encode_integer_to_chars(value: int) -> str:
    if value == 0:
        return chr(63)
    encoded_chars = []
    while value > 0:
        chunk = value & 31
        value >>= 5
        if value > 0:
            chunk |= 32
        encoded_chars.append(chr(chunk + 63))
    return ''.join(encoded_chars)
```
[Explanation]
This function processes the integer in 5-bit chunks with bitwise operations and converts each chunk into a \
character using the specified encoding scheme.
[Tests]
You can validate this function with a few test cases to ensure correctness:
```python
assert encode_integer_to_chars(0) == chr(63)
assert encode_integer_to_chars(31) == chr(63 + 31)
assert encode_integer_to_chars(32) == chr(63 + 32) + chr(63 + 1)
```
"""
DSTC_STOP = ("## Example 3", "\n### Instruction")
SECTION_MARKERS = ("[Reasoning]", "[Implementation]", "[Explanation]", "[Tests]")


def is_code_prompt(prompt: str, entry_point: str | None = None) -> bool:
    """True for a HumanEval-style prompt: Python source (signature + docstring) to continue."""
    if not prompt.strip() or "[BEGIN]" in prompt:
        return False
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return False
    defs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    return bool(defs) and (entry_point is None or entry_point in defs)


def task_description(row: Mapping[str, Any]) -> str:
    """The task stated for a test writer: the HumanEval signature+docstring, else the instruction."""
    prompt, entry = row.get("prompt") or "", row.get("entry_point")
    if is_code_prompt(prompt, entry):
        return f"```python\n{prompt.rstrip()}\n```"
    return (row.get("instruction") or prompt).strip()


def code_prompt(row: Mapping[str, Any], *, chat: bool, system_prompt: str | None = None) -> Prompt:
    """Code generation: chat models get ``instruction``; completion models continue ``prompt``."""
    if not chat:
        return row["prompt"]
    messages: list[Message] = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": row.get("instruction") or row["prompt"]}]


def _entry_sentence(entry_point: str | None) -> str:
    return f"The main function name is `{entry_point}`." if entry_point else ""


def codedpo_test_prompt(row: Mapping[str, Any], *, chat: bool) -> Prompt:
    """CodeDPO's LLM Prompt 3 (Appendix B), word for word: "Generate only assertion statements based on
    the following description. Do not generate any other code: {Instruction} Generated Assertions:
    assert ...". {Instruction} is the task as stated (:func:`task_description`: a HumanEval signature
    with its docstring, else the instruction); a completion model continues right after ``assert``."""
    text = CODEDPO_TEST_TEMPLATE.format(description=task_description(row))
    if chat:
        return [{"role": "user", "content": text.rstrip()}]
    return text + "assert "


def dstc_prompt(row: Mapping[str, Any], *, chat: bool) -> Prompt:
    """DSTC's four-part prompt (Appendix B) with the entry point named (§3)."""
    instruction = (row.get("instruction") or row.get("prompt") or "").strip()
    sentence = _entry_sentence(row.get("entry_point"))
    body = f"{DSTC_EXAMPLE}\n## Example 2\n### Instruction\n{instruction}\n{sentence}".rstrip()
    if chat:
        return [
            {"role": "system", "content": DSTC_SYSTEM.rstrip()},
            {"role": "user", "content": body},
            {"role": "assistant", "content": DSTC_RESPONSE_START + "\n"},
        ]
    return f"{DSTC_SYSTEM}\n{body}\n### Response\n{DSTC_RESPONSE_START}\n"


_ENTRY_SENTENCES = re.compile(r"\s*(?:The main function name is|The function must be named) `[^`\n]+`\.")


def dstc_training_prompt(row: Mapping[str, Any], *, chat: bool) -> Prompt:
    """The prompt DSTC trains on: the instruction alone.

    "After the preprocessing phase, the entry points are removed to prevent potential information
    leakage that could lead to overfitting during training" (DSTC §3): no entry-point sentence, and
    none of the generation scaffold (system text, one-shot example, four-part directive).
    """
    instruction = (row.get("instruction") or row.get("prompt") or "").strip()
    text = _ENTRY_SENTENCES.sub("", instruction).strip()
    return [{"role": "user", "content": text}] if chat else f"{text}\n"


def split_sections(response: str) -> dict[str, str]:
    """The ``[Reasoning]``/``[Implementation]``/``[Explanation]``/``[Tests]`` parts of a DSTC answer.

    Keys are lower-case section names; a section the model skipped is absent. The first
    occurrence of each marker after the previous one wins (the directive sentence naming all
    four markers is skipped).
    """
    text = response.replace(DSTC_RESPONSE_START, "")
    found: list[tuple[int, str]] = []
    for marker in SECTION_MARKERS:
        i = text.find(marker)
        if i >= 0:
            found.append((i, marker))
    found.sort()
    out: dict[str, str] = {}
    for k, (i, marker) in enumerate(found):
        end = found[k + 1][0] if k + 1 < len(found) else len(text)
        out[marker.strip("[]").lower()] = text[i + len(marker) : end].strip("\n")
    return out


def _assert_spans(text: str) -> list[str]:
    """Source of every ``assert`` statement in ``text``, tolerating prose and broken lines around them."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped.startswith("assert ") and not stripped.startswith("assert("):
            i += 1
            continue
        for j in range(i + 1, min(i + 15, len(lines)) + 1):  # an assert may span a few lines
            chunk = "\n".join(line.strip() if k == 0 else line for k, line in enumerate(lines[i:j]))
            try:
                tree = ast.parse(chunk)
            except SyntaxError:
                continue
            if len(tree.body) == 1 and isinstance(tree.body[0], ast.Assert):
                out.append(chunk)
                i = j
                break
        else:
            i += 1
    return out


def _imports(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(("import ", "from ")) and " import " in f" {s}":
            try:
                ast.parse(s)
            except SyntaxError:
                continue
            out.append(s)
    return list(dict.fromkeys(out))


def parse_test_units(text: str, *, entry_point: str | None = None, limit: int | None = None) -> list[str]:
    """One runnable unit per ``assert`` found in ``text`` (parsed by ``ast``, deduplicated, capped).

    Imports that appear in the text are prepended to each unit (DSTC asks the tests to import
    what they need). With ``entry_point`` only asserts that mention it are kept: an assert that
    does not call the function under test cannot tell code apart.
    """
    imports = "\n".join(_imports(text))
    seen: set[str] = set()
    units: list[str] = []
    for src in _assert_spans(text):
        node = ast.parse(src).body[0]
        if entry_point and not any(isinstance(n, ast.Name) and n.id == entry_point for n in ast.walk(node)):
            continue
        key = ast.dump(node)
        if key in seen:
            continue
        seen.add(key)
        units.append(f"{imports}\n{src}" if imports else src)
        if limit is not None and len(units) >= limit:
            break
    return units
