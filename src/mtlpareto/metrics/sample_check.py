"""Regression of a profile's committed metrics without rerunning it: a sampled, bitwise rerun.

A profile too long for CI (e.g. `fashion`, ~90 min on 2 cores) is checked by retraining a small
deterministic sample of its runs and requiring each fresh ``metrics.json`` to equal the
committed one exactly (CPU runs are bit-for-bit deterministic for a seed and pinned packages).

* The sample: the runs ordered by the SHA-256 of their run id, first ``k``.  The order does not
  depend on params.yaml's order or Python's hash seed, and adding a run to the profile moves
  the sample only if the new run's hash sorts before the chosen ones.
* The comparison: JSON values, exactly (floats by value, NaN equal to NaN, ``1`` not equal to
  ``1.0``); the first differing key is named as a path, e.g. ``splits.test.left.accuracy``.

The retraining itself is the CLI's (cli.py `check-sample`): it rebuilds the data and trains and
evaluates each sampled run in a scratch working directory, by the same functions the pipeline's
jobs call, so the committed files are never touched.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Protocol, Sequence, TypeVar

from mtlpareto.errors import ConfigError


class _HasId(Protocol):  # a config.Run (metrics/ sits below config/ in the layers)
    id: str


R = TypeVar("R", bound=_HasId)


def run_hash(run_id: str) -> str:
    """Hex SHA-256 of a run id (the stable sort key of the sample)."""
    return hashlib.sha256(run_id.encode("utf-8")).hexdigest()


def sample_runs(runs: Sequence[R], k: int) -> list[R]:
    """The ``k`` runs with the smallest SHA-256 of their id (all of them if fewer)."""
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"--runs must be a positive integer, got {k!r}")
    return sorted(runs, key=lambda run: run_hash(run.id))[:k]


def _same_value(expected: Any, actual: Any) -> bool:
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, float) and math.isnan(expected):
        return math.isnan(actual)
    return expected == actual


def first_difference(expected: Any, actual: Any, path: str = "") -> str | None:
    """Path of the first key where two JSON values differ (None if they are equal).

    Keys are visited in the expected file's order; a missing or extra key is a difference.
    """
    where = path or "<top level>"
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected:
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual:
                return f"{sub} (missing in the rerun)"
            found = first_difference(expected[key], actual[key], sub)
            if found:
                return found
        extra = [key for key in actual if key not in expected]
        return f"{path + '.' if path else ''}{extra[0]} (only in the rerun)" if extra else None
    if isinstance(expected, list) and isinstance(actual, list):
        for i, (e, a) in enumerate(zip(expected, actual)):
            found = first_difference(e, a, f"{path}[{i}]")
            if found:
                return found
        if len(expected) != len(actual):
            return f"{where} (length {len(expected)} committed, {len(actual)} in the rerun)"
        return None
    if _same_value(expected, actual):
        return None
    return f"{where} (committed {json.dumps(expected)}, rerun {json.dumps(actual)})"


def compare_metrics(run_id: str, committed: Path, rerun: Path, label: str | None = None) -> str | None:
    """A problem line naming the run and the first differing key, or None if bitwise equal.

    `label` names the committed file in the message (default: its path as given).
    """
    expected = json.loads(Path(committed).read_text())
    actual = json.loads(Path(rerun).read_text())
    diff = first_difference(expected, actual)
    return None if diff is None else f"{run_id}: {label or committed} differs from the rerun at {diff}"
