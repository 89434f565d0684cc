"""Delta_m: the mean relative gain over single-task baselines (Maninis et al. 2019).

`delta_m` averages over the (task, metric) pairs it is given; `delta_m_every_metric` and
`delta_m_per_task` choose those pairs by the field's two conventions (see below).

    delta_m = 100 / K * sum_k (-1)^{l_k} (M_k - B_k) / B_k

over the K (task, metric) pairs, with l_k = 1 when lower is better for metric k: positive
means better than the single-task models on average.  Directions come from the tasks.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from mtlpareto.errors import ConfigError
from mtlpareto.tasks import Task


def delta_m(scores: Mapping[tuple[str, str], float], baseline: Mapping[tuple[str, str], float], higher_is_better: Mapping[tuple[str, str], bool]) -> float:
    """delta_m [%] of `scores` against `baseline`, both {(task, metric): value}."""
    keys = list(scores)
    if not keys:
        raise ConfigError("delta_m needs at least one (task, metric) score")
    missing = [k for k in keys if k not in baseline or k not in higher_is_better]
    if missing:
        raise ConfigError(f"delta_m: no baseline or direction for {', '.join(f'{t}/{m}' for t, m in missing)}")
    total = 0.0
    for key in keys:
        base = float(baseline[key])
        if base == 0:
            raise ConfigError(f"delta_m: the baseline of {key[0]}/{key[1]} is 0, so its relative change is undefined")
        sign = 1.0 if higher_is_better[key] else -1.0
        total += sign * (float(scores[key]) - base) / abs(base)
    return 100.0 * total / len(keys)


# --------------------------------------------------------------------------- the two conventions
#
# Both average the signed relative change; they differ in which metrics enter the average.
# * every metric (Nash-MTL, FAMO, LibMTL): K = all reported metrics of all tasks, so a task with
#   more metrics (NYUv2 normals: 5) weighs more;
# * one metric per task (MTAN's README, Auto-Lambda, MPPS Eq. 5): K = T, each task's primary
#   metric (or a named one), so every task weighs the same.
# Scores are nested {task: {metric: value}} as evaluate writes them; directions come from the tasks.

Scores = Mapping[str, Mapping[str, float]]


def _directions(tasks: Sequence[Task]) -> dict[str, Task]:
    return {task.name: task for task in tasks}


def delta_m_every_metric(scores: Scores, baseline: Scores, tasks: Sequence[Task], exclude: Sequence[str] = ("loss",)) -> float:
    """delta_m [%] over every metric of every task except `exclude` (the training losses by default)."""
    keys = [(task.name, metric) for task in tasks for metric in task.metrics if metric not in exclude]
    return _delta_m_of(keys, scores, baseline, tasks)


def delta_m_per_task(scores: Scores, baseline: Scores, tasks: Sequence[Task], metrics: Mapping[str, str] | None = None) -> float:
    """delta_m [%] over one metric per task: `metrics[task]` if given, else the task's primary metric."""
    metrics = dict(metrics or {})
    unknown = sorted(set(metrics) - {task.name for task in tasks})
    if unknown:
        raise ConfigError(f"delta_m: metrics named for unknown task(s) {', '.join(unknown)}")
    keys = []
    for task in tasks:
        metric = metrics.get(task.name, task.primary)
        task.higher_is_better(metric)  # fails naming the task's metrics when it has no such metric
        keys.append((task.name, metric))
    return _delta_m_of(keys, scores, baseline, tasks)


def _delta_m_of(keys: list[tuple[str, str]], scores: Scores, baseline: Scores, tasks: Sequence[Task]) -> float:
    by_name = _directions(tasks)

    def flat(nested: Scores, what: str) -> dict[tuple[str, str], float]:
        out = {}
        for task, metric in keys:
            value = nested.get(task, {}).get(metric)
            if value is None:
                raise ConfigError(f"delta_m: {what} has no value for {task}/{metric}")
            out[(task, metric)] = float(value)
        return out

    return delta_m(flat(scores, "the scores"), flat(baseline, "the baseline"), {k: by_name[k[0]].higher_is_better(k[1]) for k in keys})
