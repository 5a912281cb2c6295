"""The layers hold: no import circle between fercam's modules, and no stage importing an app.

Read from the source with `ast`, so every import counts, the lazy ones inside functions included (a circle
broken only by importing late is still a circle: it just fails later, and in the reader's head first).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fercam"
APPS = "fercam.apps"
ENTRY = "fercam.__main__"  # `python -m fercam`: the CLI's launcher, above everything
TRAINING = "fercam.training"
TRAINING_DOOR = "fercam.apps.model_commands"  # `fercam train` and `fercam evaluate`: the app's one way in


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """{dotted name: file} of every module in the package, a package by its `__init__.py`."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The fercam modules `path` imports anywhere in its body: `from a import b` names the module a.b where b is
    one, else a; a relative import is resolved from the module's own package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import fercam.x.attr`-like names: the module that holds it
                target = target.rpartition(".")[0]
            if target.startswith("fercam") and target != name:
                found.add(target)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    known = modules(package)
    return {name: imported(path, name, set(known)) for name, path in known.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of two or more modules (Tarjan), each sorted: every import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def is_app(name: str) -> bool:
    return name == ENTRY or within(name, APPS)


def test_no_import_circle_between_fercam_modules() -> None:
    found = circles(import_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(group) for group in found)


def test_no_stage_imports_an_app() -> None:
    upward = {
        f"{name} -> {target}"
        for name, targets in import_graph().items()
        if not is_app(name)
        for target in targets
        if is_app(target)
    }
    assert not upward, "stages importing an app: " + ", ".join(sorted(upward))


def test_only_training_and_its_commands_import_training() -> None:
    """TensorFlow stays out of the app: the runtime never imports `fercam.training`."""
    found = {
        f"{name} -> {target}"
        for name, targets in import_graph().items()
        if not within(name, TRAINING) and name != TRAINING_DOOR
        for target in targets
        if within(target, TRAINING)
    }
    assert not found, "imports of fercam.training from the runtime: " + ", ".join(sorted(found))


def test_the_walk_sees_lazy_and_relative_imports_and_finds_circles(tmp_path: Path) -> None:
    """The checks above can fail: a circle made only of a lazy import is found, and a relative import resolves."""
    package = tmp_path / "fercam"
    (package / "apps").mkdir(parents=True)
    for name, text in {
        "__init__.py": "",
        "a.py": "from fercam.b import thing\n",
        "b.py": "def thing():\n    from . import a\n    import fercam.c.attr\n",
        "c.py": "from fercam.apps import app\n",
        "apps/__init__.py": "",
        "apps/app.py": "from .. import c\n",
    }.items():
        (package / name).write_text(text)
    graph = import_graph(package)
    assert graph["fercam.a"] == {"fercam.b"}
    assert graph["fercam.b"] == {"fercam.a", "fercam.c"}
    assert graph["fercam.apps.app"] == {"fercam.c"}
    assert sorted(circles(graph)) == [["fercam.a", "fercam.b"], ["fercam.apps.app", "fercam.c"]]
    assert is_app("fercam.apps.app") and is_app(ENTRY) and not is_app("fercam.appsx")
