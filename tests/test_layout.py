"""The package layout rules of docs/architecture.md, checked on the source with ``ast``.

1. No import cycles between the package's modules (imports under ``if TYPE_CHECKING:`` do not run
   and are not counted).
2. No imports of the package's own modules inside functions, except in the CLI (which defers them
   so that ``followaudit --help`` starts fast). Third-party libraries may still be imported lazily.
3. At most a handful of loose modules at the top of the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "followaudit"
LOOSE_ALLOWED = {"__init__", "__main__", "_moved", "audit", "config", "errors", "schema"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def own_imports() -> tuple[dict[str, set[str]], list[tuple[str, int, str]]]:
    """Module-level import graph of the package, and the function-level own imports."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    in_functions: list[tuple[str, int, str]] = []

    def targets(mod: str, is_pkg: bool, node: ast.AST) -> list[str]:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(mod, is_pkg, node)
            # `from . import x` imports the submodule x when there is one
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            return []
        return [n for n in names if n.split(".")[0] == "followaudit" and n in modules]

    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))

        def walk(node: ast.AST, in_function: bool, mod: str = mod, is_pkg: bool = is_pkg, tree: ast.AST = tree) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child):
                    continue
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    # a package's module-level __getattr__ (PEP 562) re-exports its submodules' names
                    # lazily: its imports count as the package's own, cycles and all
                    walk(child, not (is_pkg and isinstance(child, ast.FunctionDef) and child.name == "__getattr__"
                                     and node is tree))
                    continue
                found = targets(mod, is_pkg, child)
                if found:
                    if in_function:
                        in_functions.extend((mod, child.lineno, t) for t in found)
                    else:
                        graph[mod].update(t for t in found if t != mod)
                walk(child, in_function)

        walk(tree, False)
    # importing a.b.c runs a/__init__ and a/b/__init__ first
    for mod in list(graph):
        for target in list(graph[mod]):
            parts = target.split(".")
            for i in range(2, len(parts)):
                parent = ".".join(parts[:i])
                if parent in graph and parent != mod and not mod.startswith(parent + "."):
                    graph[mod].add(parent)
    return graph, in_functions


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    graph, _ = own_imports()
    assert cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_own_imports_inside_functions_outside_the_cli() -> None:
    _, in_functions = own_imports()
    offenders = [f"{m}:{line} imports {t}" for m, line, t in in_functions if not m.startswith("followaudit.cli")]
    assert offenders == []


def test_few_loose_modules_at_the_top() -> None:
    loose = {p.stem for p in PACKAGE.glob("*.py")}
    assert loose <= LOOSE_ALLOWED, sorted(loose - LOOSE_ALLOWED)


def test_old_module_paths_still_import_with_a_warning() -> None:
    import importlib
    import warnings

    from followaudit._moved import MOVED

    for old, new in MOVED.items():
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            assert importlib.import_module(old) is importlib.import_module(new)


def test_help_imports_no_heavy_library() -> None:
    """`followaudit --help` stays fast: the CLI defers everything heavy to the command that needs it."""
    import subprocess
    import sys

    code = (
        "import sys; from followaudit.cli import cli; "
        "print(sorted(m for m in ('polars', 'duckdb', 'numpy', 'httpx', 'rich', 'jinja2', 'lightgbm', 'sklearn', "
        "'scipy', 'matplotlib', 'pyarrow', 'importlib.metadata') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_audit_path_loads_no_training_or_http_stack() -> None:
    """An audit walks the compiled trees itself and collects nothing: no LightGBM, scikit-learn or httpx."""
    import subprocess
    import sys

    code = (
        "import sys; import followaudit.audit; "
        "print(sorted(m for m in ('httpx', 'lightgbm', 'sklearn', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
