"""MTL methods behind one registry: one file per method, one registry line each."""

from __future__ import annotations

import inspect

from mtlpareto.methods.base import Method, StepContext
from mtlpareto.registry import Registry

METHODS: Registry[type[Method]] = Registry("method")


def build_method(
    spec: dict,
    n_tasks: int,
    preference: tuple[float, ...] | None = None,
    task: int | None = None,
    preference_set: list[tuple[float, ...]] | None = None,
) -> Method:
    """Instantiate a method from its params.yaml entry ({"name": ..., **options}).

    `preference_set` (the experiment's whole preference grid) is passed only to methods whose
    constructor accepts it, e.g. Pareto MTL, which uses the other preferences as constraints.
    """
    cls = METHODS.get(spec["name"])
    options = {k: v for k, v in spec.items() if k != "name"}
    if "preference_set" in inspect.signature(cls).parameters:
        options["preference_set"] = preference_set
    return cls(n_tasks=n_tasks, preference=preference, task=task, **options)


def standalone_options(name: str, n_tasks: int) -> dict:
    """What a sweeping method needs when built outside a run matrix (benchmarks, tests): the
    uniform preference for preference sweeps, task 0 for per-task methods."""
    sweep = METHODS.get(name).sweep
    if sweep == "preferences":
        return {"preference": tuple([1.0 / n_tasks] * n_tasks)}
    if sweep == "tasks":
        return {"task": 0}
    return {}


# Registry lines: one per method file.
from mtlpareto.methods import single_task, uniform, linear, mgda, mgda_ub, uncertainty, gradnorm, dwa, rlw, pcgrad, cagrad, graddrop, pareto_mtl  # noqa: E402,F401
from mtlpareto.methods import nash_mtl, aligned_mtl, imtl, famo  # noqa: E402,F401
from mtlpareto.methods import auto_lambda  # noqa: E402,F401
from mtlpareto.methods import ctrl_linear, ctrl_pareto, phn_ls, phn_epo  # noqa: E402,F401
from mtlpareto.methods import dymu  # noqa: E402,F401

from mtlpareto.methods.api import MTLStep  # noqa: E402

__all__ = ["METHODS", "MTLStep", "Method", "StepContext", "build_method", "standalone_options"]
