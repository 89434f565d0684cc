"""MTL methods behind one registry: one file per method, one registry line each."""

from __future__ import annotations

from mtlpareto.methods.base import Method, StepContext
from mtlpareto.registry import Registry

METHODS: Registry[type[Method]] = Registry("method")


def build_method(spec: dict, n_tasks: int, preference: tuple[float, ...] | None = None, task: int | None = None) -> Method:
    options = {k: v for k, v in spec.items() if k != "name"}
    return METHODS.get(spec["name"])(n_tasks=n_tasks, preference=preference, task=task, **options)


# Registry lines: one per method file.
from mtlpareto.methods import single_task, uniform, linear, mgda, mgda_ub  # noqa: E402,F401

__all__ = ["METHODS", "Method", "StepContext", "build_method"]
