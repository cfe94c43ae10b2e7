"""Imports point down (CONTRIBUTING.md, "Architecture"): every ``ekspresi`` import, at module
level or inside a function, goes to a lower layer or stays in its own package, and no
modules import each other in a loop. Read from the source with ``ast``; nothing is run."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "ekspresi"

#: Layer of each top-level module or package, from the ground up.
LAYERS = {
    "errors": 0, "preprocess": 0, "_version": 0, "machine": 0, "csvcells": 0,
    "examples": 1,
    "labels": 1, "imaging": 1, "runs": 1, "onnxrt": 1, "metrics_schema": 1,
    "models": 2, "detect": 2,
    "data": 3,
    "infer": 4,
    "evaluate": 5, "distributed": 5, "export": 5,
    "train": 6, "web": 6,
    "cli": 7, "__init__": 7,
    "__main__": 8,
}

#: Known exceptions, each to be removed by the change that owns the file: (importer prefix,
#: imported prefix).
EXCEPTIONS = {
}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The ekspresi modules ``path`` imports: ``from ekspresi.x import y`` is module
    ``ekspresi.x.y`` when that is one, else ``ekspresi.x``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                names.add(sub if sub in modules else node.module)
    return names & modules


def _graph() -> dict[str, set[str]]:
    """module -> the modules it imports; a package's ``__init__`` handing on names of its
    own submodules (lazily, for a fast ``ekspresi --help``) is not counted as importing them."""
    files = {_module(p): p for p in SRC.rglob("*.py")}
    return {mod: {d for d in _imports(path, set(files)) - {mod}
                  if not (path.name == "__init__.py" and d.startswith(mod + "."))}
            for mod, path in files.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _excepted(src: str, dst: str) -> bool:
    return any(src.startswith(a) and dst.startswith(b) for a, b in EXCEPTIONS)


def test_every_module_has_a_layer():
    assert {_top(m) for m in _graph()} <= set(LAYERS)


def test_imports_point_down():
    upward = sorted(f"{src} -> {dst}" for src, dsts in _graph().items() for dst in dsts
                    if _top(src) != _top(dst) and LAYERS[_top(dst)] >= LAYERS[_top(src)]
                    and not _excepted(src, dst))
    assert upward == []


def test_no_import_cycles():
    graph = {m: {d for d in ds if not _excepted(m, d)} for m, ds in _graph().items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []
