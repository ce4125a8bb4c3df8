"""Trust level of a ground-truth test unit: judged apart from the sample, or run in the sample's process.

Two-party judging runs a test in a judge process and calls into the sample's process for the sample's
values: functions and classes of the sample are called there, its objects stay there (attributes, items,
``str``/``len``/``bool`` and iteration are asked for), and the test's own callables can be called back.
What cannot work that way is a test that needs the sample's *types* in the judge: ``isinstance(x, C)``,
``except C``, ``pytest.raises(C)`` with a name the sample defines, or a comparison with a class the
problem's reference solution defines or with a freshly built instance of one (``f() == Point(1, 2)``).
Such a unit has trust level ``in-process`` (recorded per test in ``test_trust``). By default it is not run
(an error for every sample): a verdict reached in the sample's process is the sample's to write. With
``ExecutionConfig.in_process_tests`` it runs with the program in one fresh process, which reports its
verdict itself.

The level is decided from the test's code, the problem's setup and its reference solution only, never
from a sample, so a sample cannot move its own tests into its process. Model-written tests
(``gen_tests``) are always judged.
"""

from __future__ import annotations

import ast
import builtins
import sys
from collections.abc import Sequence
from functools import lru_cache

JUDGED = "judged"
IN_PROCESS = "in-process"
LEVELS = (JUDGED, IN_PROCESS)
_KNOWN = frozenset(dir(builtins)) | frozenset(sys.stdlib_module_names)


def _bound(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _mentions(node: ast.AST | None, names: set[str]) -> bool:
    return node is not None and any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def reference_classes(reference: str | None) -> frozenset[str]:
    """Names of the classes a reference solution defines at top level."""
    try:
        tree = ast.parse(reference or "")
    except (SyntaxError, ValueError):
        return frozenset()
    return frozenset(n.name for n in tree.body if isinstance(n, ast.ClassDef))


def _needs_types(tree: ast.AST, sample: set[str], classes: frozenset[str]) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            fname = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if fname in ("isinstance", "issubclass") and len(node.args) > 1 and _mentions(node.args[1], sample):
                return True
            if fname.lower().endswith("raises") and node.args and _mentions(node.args[0], sample):
                return True
        elif isinstance(node, ast.ExceptHandler) and _mentions(node.type, sample):
            return True
        elif isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                if isinstance(side, ast.Name) and side.id in classes:
                    return True
                if isinstance(side, ast.Call) and isinstance(side.func, ast.Name) and side.func.id in classes:
                    return True
    return False


_TRIGGERS = ("isinstance", "issubclass", "except", "raises", "Raises")


def _could_need_types(text: str, classes: frozenset[str]) -> bool:
    """Cheap pre-check on the source text: without any of these words no rule below can apply."""
    return any(t in text for t in _TRIGGERS) or any(c in text for c in classes)


@lru_cache(maxsize=4096)
def trust_level(unit: str, setup: str = "", classes: frozenset[str] = frozenset()) -> str:
    """``judged`` or ``in-process`` for one test unit (static: from the unit's and the setup's code, and the
    names of the classes the problem's reference solution defines)."""
    if not _could_need_types(unit, classes) and not _could_need_types(setup or "", classes):
        return JUDGED
    try:
        unit_tree, setup_tree = ast.parse(unit), ast.parse(setup or "")
    except (SyntaxError, ValueError):
        return JUDGED  # it fails to compile either way
    trees = (unit_tree, setup_tree)
    bound = _bound(unit_tree) | _bound(setup_tree)
    loaded = {n.id for t in trees for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    sample = loaded - bound - _KNOWN
    if not sample:
        return JUDGED
    return IN_PROCESS if any(_needs_types(t, sample, classes & sample) for t in trees) else JUDGED


def trust_levels(tests: Sequence[str], setup: str = "", reference: str | None = None) -> list[str]:
    """:func:`trust_level` of every unit of a problem (``reference``: its reference solution, if any)."""
    classes = reference_classes(reference) if reference and "class" in reference else frozenset()
    return [trust_level(t, setup or "", classes) for t in tests]
