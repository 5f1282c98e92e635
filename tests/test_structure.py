"""The shape of the code (issue 13): no import cycle, no private name imported across modules,
modules of at most 450 lines and functions of at most 80.

Every import is parsed, including those inside functions: a cycle hidden in a function body is
still a cycle of responsibilities (``registry`` importing the codecs that import ``registry``).
A package's ``__init__`` importing its submodules is an edge like any other, so a submodule that
imports its package back (or the registry that imports a package of registered classes) shows up;
dunder names (``__version__``) are public.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 450, 80


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "baselines":
        parts = ["semsim", *parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = {_module(p): p for p in sorted([*ROOT.glob("semsim/**/*.py"), *ROOT.glob("baselines/*.py")])
         if p.relative_to(ROOT).parts[:2] != ("semsim", "baselines")}  # a worktree's link to baselines/


def _target(mod: str, node: ast.ImportFrom, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".")[: len(mod.split(".")) - (0 if is_pkg else 1)]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports():
    """(importer, imported module, imported name or None) for every semsim import in the code."""
    for mod, path in FILES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                yield from ((mod, a.name, None) for a in node.names if a.name.split(".")[0] == "semsim")
            elif isinstance(node, ast.ImportFrom):
                target = _target(mod, node, path.name == "__init__.py")
                if target.split(".")[0] == "semsim":
                    for a in node.names:
                        sub = f"{target}.{a.name}"
                        yield (mod, sub, None) if sub in FILES else (mod, target, a.name)


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in FILES}
    for src, dst, _ in _imports():
        if dst in FILES and dst != src:  # a package's __init__ importing its submodules counts too
            edges[src].add(dst)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_walker_sees_the_package():
    assert {"semsim.registry", "semsim.codec", "semsim.baselines.deepjscc"} <= set(FILES)
    assert any(dst == "semsim.registry" for _, dst, _ in _imports())
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_cycle():
    assert _cycles(_graph()) == []


def test_no_private_import_across_modules():
    bad = sorted({f"{src} imports {dst}.{name}" for src, dst, name in _imports()
                  if name and name.startswith("_") and not name.startswith("__") and dst != src})
    assert bad == []


def test_module_and_function_lengths():
    long_modules = {m: n for m, p in FILES.items() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    long_functions = [f"{m}.{node.name}: {node.end_lineno - node.lineno + 1}" for m, p in FILES.items()
                      for node in ast.walk(ast.parse(p.read_text()))
                      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert (long_modules, long_functions) == ({}, [])


if __name__ == "__main__":  # a report of what is left: python tests/test_structure.py
    for c in _cycles(_graph()):
        print("cycle:", " ".join(c))
        for m in c:
            print("   ", m, "->", " ".join(sorted(d for d in _graph()[m] if d in c)))
    for src, dst, name in sorted(set(_imports())):
        if name and name.startswith("_") and not name.startswith("__") and dst != src:
            print(f"private: {src} imports {dst}.{name}")
    for m, p in FILES.items():
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES:
            print(f"module over {MAX_MODULE_LINES} lines: {m} {n}")
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                print(f"function over {MAX_FUNCTION_LINES} lines: {m}.{node.name} {node.end_lineno - node.lineno + 1}")
