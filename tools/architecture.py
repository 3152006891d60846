#!/usr/bin/env python3
"""The shape of the conformance package, checked: import circles, upward imports, long functions.

    python tools/architecture.py            # print the module graph's layers, circles and longest functions
    python tools/architecture.py --check    # exit 1 on a circle, an upward import or a function of 50+ lines

Imports are read with ``ast`` (nothing is imported), including those inside functions: a deferred import
that closes a circle is still a circle. ``from . import name`` counts as an import of the submodule
``name`` where one exists, not of the package. tests/test_architecture.py runs the check.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "conformance"
LONGEST = 49  # lines, decorators excluded

# Each module's layer: a module may import its own layer and those below it, never one above. The first
# prefix that matches names the layer (longest prefixes first).
LAYERS: list[tuple[str, list[str]]] = [
    ("codec", ["conformance.codec"]),
    ("base", ["conformance.about", "conformance.verdicts", "conformance.catalogue", "conformance.secrets",
              "conformance.resources", "conformance.data"]),
    ("net", ["conformance.net", "conformance.errors"]),
    ("wire", ["conformance.transcript", "conformance.setup_steps", "conformance.probe", "conformance.judge",
              "conformance.barriers", "conformance.grading"]),
    ("cases", ["conformance.case", "conformance.steps"]),
    ("brokers", ["conformance.brokers"]),
    ("run", ["conformance.run"]),
    ("reports", ["conformance.reports"]),
    ("fuzz", ["conformance.fuzz"]),
    ("front", ["conformance.plugin", "conformance.cli", "conformance.console", "conformance"]),
]


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(node: ast.ImportFrom | ast.Import, name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names if alias.name in known)
        return
    if node.level:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    plain = False
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in known:
            yield sub
        else:
            plain = True
    if plain and base in known:
        yield base


def graph(known: dict[str, Path]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges[name].update(dep for dep in _imported(node, name, path, known) if dep != name)
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def layer(name: str) -> int:
    best, rank = -1, -1
    for position, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), position
    return rank


def upward(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((name, dep) for name, deps in edges.items() for dep in deps
                  if name != PACKAGE and layer(dep) > layer(name))


def functions(known: dict[str, Path], root: Path = ROOT) -> list[tuple[int, str]]:
    lengths = []
    for path in known.values():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lengths.append((node.end_lineno - node.lineno + 1,
                                f"{path.relative_to(root)}:{node.lineno} {node.name}"))
    return sorted(lengths, reverse=True)


def problems(root: Path = ROOT) -> list[str]:
    known = modules(root)
    edges = graph(known)
    found = [f"import circle: {' <-> '.join(c)}" for c in circles(edges)]
    found += [f"upward import: {a} ({LAYERS[layer(a)][0]}) imports {b} ({LAYERS[layer(b)][0]})"
              for a, b in upward(edges)]
    found += [f"{where}: {length} lines (at most {LONGEST})" for length, where in functions(known, root)
              if length > LONGEST]
    unplaced = [name for name in known if layer(name) < 0]
    found += [f"module in no layer: {name}" for name in unplaced]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on any problem")
    args = parser.parse_args(argv)
    known = modules()
    edges = graph(known)
    for position, (title, _) in enumerate(LAYERS):
        members = sorted(name.removeprefix("conformance.") for name in known if layer(name) == position)
        print(f"{title:8} {', '.join(members)}")
    print(f"{len(known)} modules, {sum(map(len, edges.values()))} imports")
    print("longest functions:", "; ".join(f"{where} ({n})" for n, where in functions(known)[:5]))
    found = problems()
    print("\n".join(found) or "no import circle, no upward import, no function over the limit")
    return 1 if args.check and found else 0


if __name__ == "__main__":
    sys.exit(main())
