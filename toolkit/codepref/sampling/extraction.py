"""From a raw model output to an executable program.

Chat models answer in prose with fenced code blocks (often several, sometimes unterminated,
sometimes only the function body); completion models continue the prompt and run on past the
solution. The rules follow the evaluation harnesses (Codex/HumanEval and
bigcode-evaluation-harness stop sequences; MBPP's ``[BEGIN]``/``[DONE]``), plus two repairs
that NOTES.md measured to matter for small instruct models: re-attach the prompt's signature
to a body-only answer, and re-add the prompt's imports and helpers the model dropped.
"""

from __future__ import annotations

import ast
import re

from .prompts import is_code_prompt

# bigcode-evaluation-harness HumanEval stop words (a new top-level statement ends the body).
COMPLETION_STOPS = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\nassert ", "\n@", "\n#", "\n```")
# MBPP 3-shot: the answer ends at [DONE]; a program never needs top-level asserts or prints.
MBPP_STOPS = ("[DONE]", "\nassert ", "\nprint(", "\nif __name__", "\n```", "\nYou are an expert")

_FENCE = re.compile(r"```[ \t]*([\w+.#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_PY_LANGS = {"", "python", "py", "python3", "py3", "pycon"}
_CODE_START = re.compile(r"^(?:async\s+def |def |class |import |from \S+ import |@\w)")


def syntax_ok(code: str) -> bool:
    """True if ``code`` parses as Python."""
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: source with null bytes
        return False
    return True


def truncate_at_stops(text: str, stops: tuple[str, ...] | list[str]) -> str:
    """``text`` cut at the earliest occurrence of any stop string (the stop itself is dropped)."""
    cut = len(text)
    for stop in stops:
        if stop:
            i = text.find(stop)
            if 0 <= i < cut:
                cut = i
    return text[:cut]


def cut_after_code_block(text: str) -> str:
    """``text`` up to and including the first *closing* fence (the stop rule for chat answers)."""
    first = text.find("```")
    if first < 0:
        return text
    second = text.find("```", first + 3)
    return text if second < 0 else text[: second + 3]


def fenced_blocks(text: str) -> list[str]:
    """Contents of the Python (or untagged) fenced blocks in ``text``; an unterminated last fence counts."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    python = [body for lang, body in blocks if lang in _PY_LANGS]
    return python or [body for _, body in blocks]


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b", code, re.M) is not None


def _pick_block(blocks: list[str], entry_point: str | None) -> str:
    if entry_point:
        defining = [b for b in blocks if _defines(b, entry_point)]
        if defining:
            return next((b for b in defining if syntax_ok(b)), defining[0])
    parsing = [b for b in blocks if b.strip() and syntax_ok(b)]
    return max(parsing or blocks, key=len)


def _longest_parsing_prefix(lines: list[str]) -> str | None:
    for end in range(len(lines), 0, -1):
        code = "\n".join(lines[:end])
        if syntax_ok(code):
            return code
    return None


def _unfenced_code(text: str) -> str:
    """Code in an answer without fences: from the first code-looking line, the longest part that parses."""
    if syntax_ok(text):
        return text
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _CODE_START.match(line)]
    for start in starts:
        code = _longest_parsing_prefix(lines[start:])
        if code is not None and code.strip():
            return code
    return "\n".join(lines[starts[0] :]) if starts else text


def _attach_body(prompt: str, body: str) -> str | None:
    """Prompt signature + a body-only answer, indenting the body when the model dedented it."""
    lines = [line for line in body.splitlines() if line.strip()]
    if not lines:
        return None
    if not lines[0][:1].isspace():
        body = "\n".join("    " + line if line.strip() else line for line in body.splitlines())
    program = prompt.rstrip("\n") + "\n" + body.strip("\n") + "\n"
    return program if syntax_ok(program) else None


def _bound_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def add_prompt_preamble(program: str, prompt: str, entry_point: str | None = None) -> str:
    """Prepend the prompt's imports and helper definitions that ``program`` lacks.

    Small instruct models rewrite the function and drop ``from typing import List`` or the
    helper the prompt defined (HumanEval/10's ``is_palindrome``). Only applies when both the
    prompt and the program parse.
    """
    try:
        ptree, tree = ast.parse(prompt), ast.parse(program)
    except (SyntaxError, ValueError):
        return program
    have = _bound_names(tree)
    missing: list[str] = []
    for node in ptree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound = {(a.asname or a.name).split(".")[0] for a in node.names}
            if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                bound = {f"*{node.module}"}
                have_it = f"from {node.module} import *" in program
            else:
                have_it = bound <= have
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name != entry_point:
            have_it = node.name in have
        else:
            continue
        if not have_it:
            segment = ast.get_source_segment(prompt, node, padded=False)
            if getattr(node, "decorator_list", None):  # the segment starts at "def": keep decorators
                segment = "\n".join("@" + ast.unparse(d) for d in node.decorator_list) + "\n" + (segment or "")
            if segment:
                missing.append(segment)
    if not missing:
        return program
    return "\n".join(missing) + "\n\n" + program


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either operand order)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare) or len(node.test.ops) != 1:
        return False
    sides = [node.test.left, *node.test.comparators]
    names = [x for x in sides if isinstance(x, ast.Name) and x.id == "__name__"]
    mains = [x for x in sides if isinstance(x, ast.Constant) and x.value == "__main__"]
    return isinstance(node.test.ops[0], ast.Eq) and len(names) == 1 and len(mains) == 1


def drop_main_guard(code: str) -> str:
    """``code`` without its top-level ``if __name__ == "__main__":`` blocks (a demo the model appended:
    it would run when the program is loaded, reading stdin or printing, and is not the solution)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    guards = [n for n in tree.body if _is_main_guard(n)]
    if not guards:
        return code
    lines = code.splitlines()
    for node in reversed(guards):
        del lines[node.lineno - 1 : node.end_lineno]
    return "\n".join(lines).rstrip() + "\n"


def _imports_of_other_blocks(code: str, blocks: list[str]) -> str:
    """Prepend the top-level imports that other fenced blocks of the answer make and ``code`` lacks
    (a model that writes ``import math`` in one block and the function in the next)."""
    try:
        have = _bound_names(ast.parse(code))
    except (SyntaxError, ValueError):
        return code
    missing: list[str] = []
    for block in blocks:
        if block.strip("\n") == code:
            continue
        try:
            tree = ast.parse(block)
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom) and not any(a.name == "*" for a in node.names):
                bound = {(a.asname or a.name).split(".")[0] for a in node.names}
                segment = ast.get_source_segment(block, node)
                if not bound <= have and segment and segment not in missing:
                    missing.append(segment)
                    have |= bound
    return "\n".join(missing) + "\n\n" + code if missing else code


def extract_chat_code(completion: str, *, prompt: str = "", entry_point: str | None = None) -> str:
    """The program in a chat model's answer (fenced block, else the code-looking part), repaired:
    imports the answer made in other fenced blocks are kept, an ``if __name__ == "__main__":`` demo
    is dropped, and the prompt's signature, imports and helpers are re-attached where missing."""
    blocks = fenced_blocks(completion)
    code = _pick_block(blocks, entry_point) if blocks else _unfenced_code(completion)
    code = code.strip("\n")
    if not code.strip():
        return ""
    if len(blocks) > 1:
        code = _imports_of_other_blocks(code, blocks)
    code = drop_main_guard(code).strip("\n")
    if not code.strip():
        return ""
    if is_code_prompt(prompt, entry_point):
        if entry_point and not _defines(code, entry_point):
            joined = _attach_body(prompt, code)
            if joined is not None:
                code = joined
        code = add_prompt_preamble(code, prompt, entry_point)
    return code.rstrip() + "\n" if code.strip() else ""


def extract_completion_code(completion: str, *, prompt: str, entry_point: str | None = None) -> str:
    """The program a completion model wrote: prompt + cut continuation (HumanEval) or the answer (MBPP)."""
    if is_code_prompt(prompt, entry_point):
        body = truncate_at_stops(completion, COMPLETION_STOPS)
        return prompt + body.rstrip() + "\n"
    answer = truncate_at_stops(completion, MBPP_STOPS)
    if "```" in answer:
        answer = _pick_block(fenced_blocks(answer), entry_point)
    answer = answer.strip("\n")
    return answer.rstrip() + "\n" if answer.strip() else ""


def extract_code(completion: str, *, prompt: str = "", entry_point: str | None = None, chat: bool = True) -> str:
    """The executable program in ``completion`` (see the module docstring for the rules)."""
    if chat:
        return extract_chat_code(completion, prompt=prompt, entry_point=entry_point)
    return extract_completion_code(completion, prompt=prompt, entry_point=entry_point)
