"""Splitting a test program into independently runnable units (one verdict per unit).

HumanEval ships one ``def check(candidate): ...`` per problem; a single verdict per
problem hides which behaviours a sample gets right, and the ranking methods (CodeT,
CodeDPO, DSTC) need a samples × tests matrix. We split ``check``'s body into one unit per
assert-bearing statement; the statements without an assert that precede a unit (imports,
helper variables, seeding) are repeated in front of it, so every unit runs on its own and
means exactly what it meant inside ``check``.
"""

from __future__ import annotations

import ast
import textwrap


def _segment(source: str, node: ast.stmt) -> str:
    text = ast.get_source_segment(source, node, padded=True)
    if text is None:  # pragma: no cover - only for nodes without positions
        return ast.unparse(node)
    return textwrap.dedent(text)


def _has_assert(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Assert) for n in ast.walk(node))


def _trivial(node: ast.stmt) -> bool:
    """``assert True`` (HumanEval's 'good for debugging' lines) tests nothing."""
    return isinstance(node, ast.Assert) and isinstance(node.test, ast.Constant) and node.test.value is True


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def split_check_function(test_source: str, *, entry_point: str, check_name: str = "check") -> tuple[str, list[str]]:
    """Split a HumanEval-style test program into ``(test_setup, units)``.

    ``test_setup`` holds the program's other top-level code (``METADATA``, imports, helper
    functions) and binds ``candidate`` to the entry point; each unit is an assert-bearing
    statement of ``check``'s body preceded by the assert-free statements before it.
    """
    tree = ast.parse(test_source)
    setup: list[str] = []
    check: ast.FunctionDef | None = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == check_name:
            check = node
        else:
            setup.append(_segment(test_source, node))
    if check is None:
        raise ValueError(f"no function {check_name!r} in the test program")
    param = check.args.args[0].arg if check.args.args else "candidate"
    setup.append(f"{param} = {entry_point}")
    units: list[str] = []
    prefix: list[str] = []
    for stmt in check.body:
        if _is_docstring(stmt) or _trivial(stmt):
            continue
        if _has_assert(stmt):
            units.append("\n".join([*prefix, _segment(test_source, stmt)]))
        else:
            prefix.append(_segment(test_source, stmt))
    if not units:  # e.g. EvalPlus checks call an assertion() helper in a loop: the whole body is one unit
        body = [_segment(test_source, stmt) for stmt in check.body if not _is_docstring(stmt)]
        if not body:
            raise ValueError(f"function {check_name!r} is empty")
        units = ["\n".join(body)]
    return "\n".join(s.rstrip("\n") for s in setup) + "\n", [u.rstrip("\n") for u in units]


def _stub(node: ast.stmt) -> bool:
    """A definition whose body is only a docstring (and ``pass``/``...``): the part a model completes."""
    body = getattr(node, "body", [])
    return all(
        _is_docstring(b)
        or isinstance(b, ast.Pass)
        or (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant) and b.value.value is Ellipsis)
        for b in body
    )


def prompt_helpers(prompt: str, entry_point: str) -> str:
    """The problem's own helpers in a prompt: its imports and every complete definition other than the
    entry point (HumanEval's ``poly``, ``encode_cyclic``, ...). They go into the tests' setup, so a test
    that calls them uses the problem's definition, never a sample's."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return ""
    keep = []
    for node in tree.body:
        definition = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (
            definition and node.name != entry_point and not _stub(node)
        ):
            keep.append(_segment(prompt, node))
    return "\n".join(k.rstrip("\n") for k in keep) + "\n" if keep else ""


def split_asserts(source: str) -> list[str]:
    """Split a block of top-level statements into one unit per assert (e.g. generated tests).

    Non-assert statements before an assert are repeated in front of it, as in
    :func:`split_check_function`; unparsable text raises ``SyntaxError``.
    """
    tree = ast.parse(source)
    units, prefix = [], []
    for stmt in tree.body:
        if _is_docstring(stmt) or _trivial(stmt):
            continue
        if _has_assert(stmt):
            units.append("\n".join([*prefix, _segment(source, stmt)]).rstrip("\n"))
        else:
            prefix.append(_segment(source, stmt))
    return units
