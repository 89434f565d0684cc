"""The package's layers import each other without cycles (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mtlpareto"


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "mtlpareto" and len(parts) > 1 else None


def layer_graph() -> dict[str, set[str]]:
    """{layer: layers it imports}, a layer being a subpackage or top-level module of mtlpareto."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        layer = _layer(".".join(rel.parts))
        if layer is None:  # mtlpareto/__init__.py
            continue
        deps = graph.setdefault(layer, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module == "mtlpareto":  # from mtlpareto import pipeline
                names = [f"mtlpareto.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                target = _layer(name)
                if target is not None and target != layer:
                    deps.add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_layers_have_no_import_cycle():
    cycle = find_cycle(layer_graph())
    assert cycle is None, "import cycle between layers: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    "low, high",
    [("methods", "training"), ("models", "methods"), ("tasks", "data"), ("data", "training"), ("config", "pipeline"), ("solvers", "methods")],
)
def test_lower_layers_do_not_import_higher_ones(low, high):
    assert high not in layer_graph().get(low, set()), f"{low} imports {high}"
