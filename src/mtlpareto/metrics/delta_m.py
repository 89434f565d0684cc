"""Delta_m: the mean relative gain over single-task baselines (Maninis et al. 2019).

    delta_m = 100 / K * sum_k (-1)^{l_k} (M_k - B_k) / B_k

over the K (task, metric) pairs, with l_k = 1 when lower is better for metric k: positive
means better than the single-task models on average.  Directions come from the tasks.
"""

from __future__ import annotations

from typing import Mapping

from mtlpareto.errors import ConfigError


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
