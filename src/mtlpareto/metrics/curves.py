"""Per-epoch training curves of an experiment, as one CSV for `dvc plots` (show / diff).

The training loop writes one JSON line per epoch per run (pipeline.TRAIN_LOG); DVC plots read
CSV, JSON lists, TSV or YAML, and draw one line per column of a file. So the curves file is
wide: an `epoch` column, then one column per run and task ("uniform/default/seed0 left") of
that epoch's mean training loss. Only the losses are kept: they are deterministic on CPU for a
seed, so the file is byte-identical from run to run (the epoch log's timings are not).
"""

from __future__ import annotations

import json
from pathlib import Path

from mtlpareto.errors import MTLParetoError


def curve_column(run_name: str, task: str) -> str:
    return f"{run_name} {task}"


def training_curves_csv(logs: dict[str, Path], tasks: list[str]) -> str:
    """The wide CSV of the epoch logs `logs` ({run name: train_log.jsonl}): the loss of every
    task of `tasks` per run, runs in the order given; a run with fewer epochs leaves cells empty."""
    columns = [curve_column(run_name, task) for run_name in logs for task in tasks]
    rows: dict[int, dict[str, float]] = {}
    for run_name, path in logs.items():
        if not path.exists():
            raise MTLParetoError(f"epoch log {path} of run {run_name} is missing (epoch logs are not versioned: retrain the run to write it)")
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if not records:
            raise MTLParetoError(f"epoch log {path} of run {run_name} is empty")
        for record in records:
            missing = [t for t in tasks if t not in record["train_loss"]]
            if missing:
                raise MTLParetoError(f"epoch log {path}, epoch {record['epoch']}: no training loss of task(s) {', '.join(missing)}")
            row = rows.setdefault(int(record["epoch"]), {})
            for task in tasks:
                row[curve_column(run_name, task)] = record["train_loss"][task]
    lines = [",".join(["epoch", *(_csv_field(c) for c in columns)])]
    for epoch in sorted(rows):
        values = rows[epoch]
        lines.append(",".join([str(epoch), *(repr(values[c]) if c in values else "" for c in columns)]))
    return "\n".join(lines) + "\n"


def _csv_field(text: str) -> str:
    return f'"{text}"' if any(ch in text for ch in ',"\n') else text
