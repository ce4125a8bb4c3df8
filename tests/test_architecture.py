"""The package's shape: no import cycles, no reaching into another package's private parts, one registry."""

import ast
from pathlib import Path

import codepref

ROOT = Path(codepref.__file__).parent


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for f in ROOT.rglob("*.py"):
        parts = list(f.relative_to(ROOT.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return mods


def _imports(mods):
    """(importer, imported module, imported name or None) for every import of a codepref module."""
    for name, (path, is_pkg) in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                for alias in node.names:
                    sub = f"{module}.{alias.name}"
                    yield name, (sub if sub in mods else module), (None if sub in mods else alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield name, alias.name, None


def test_import_graph_has_no_cycle():
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for src, dst, _ in _imports(mods):
        if dst in mods and dst != src:
            graph[src].add(dst)
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path[path.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for m in sorted(mods):
        if m not in state:
            visit(m, [m])


def test_no_module_reaches_into_another_package_private_parts():
    def package(mod: str) -> str:
        parts = mod.split(".")
        return ".".join(parts[:2])

    bad = []
    for src, dst, name in _imports(_modules()):
        if not dst.startswith("codepref") or package(src) == package(dst):
            continue
        private_module = any(p.startswith("_") and not p.startswith("__") for p in dst.split(".")[1:])
        private_name = name is not None and name.startswith("_") and not name.startswith("__")
        if private_module or private_name:
            bad.append((src, dst, name))
    assert not bad


def test_every_stage_function_lives_in_its_stage_module():
    """A stage is found where its package keeps it: ``<package>/stage.py``, or one module holding a small
    stage whole (its config and its function)."""
    from codepref.stages import STAGES

    for name, spec in STAGES.items():
        cls, fn = spec.load()
        assert fn.__module__.endswith(".stage") or fn.__module__ == cls.__module__, (name, fn.__module__)
