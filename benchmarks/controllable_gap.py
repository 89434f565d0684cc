"""Why controllable networks sat below single models on the quick MultiMNIST: measured ablations.

    python benchmarks/controllable_gap.py [VARIANT ...] [--out results/benchmarks/controllable_gap.csv]

Needs the quick profile's processed MultiMNIST (`snakemake --cores all paper_figures` builds
it). Each variant is a quick `multimnist_ctrl` run (seed 0) with one setting changed, or a
single network trained with the hypernetworks' optimiser and budget; all train in this one
process on one CPU thread and are scored like the pipeline's runs: the test-loss hypervolume
against the reference point (2, 2) of the whole trade-off curve (11 preferences), or of the
single network's one loss vector. The accuracies at the curve's two ends show whether the
preference controls the trade-off.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import tempfile
import time
from pathlib import Path

import torch

from mtlpareto.config import load_profile
from mtlpareto.data.store import load_processed
from mtlpareto.metrics.hypervolume import hypervolume
from mtlpareto.training import evaluate_run, train_run
from mtlpareto.training.run_state import set_threads

CTRL = "multimnist_ctrl/{}/default/seed0"
UNIFORM = "multimnist/uniform/default/seed0"
UNCHUNKED = {"chunk_size": None, "hidden_dim": 100}
# The hypernetworks' optimiser and steps (quick profile before this study: Adam 3e-3, batch 256, 4 epochs).
ADAM_4 = {"epochs": 4, "batch_size": 256, "optimizer": "adam", "lr": 0.003, "memory_format": "contiguous"}
BEFORE = {"epochs": 4}
CHUNKED = {"chunk_size": "auto", "hidden_dim": 64}
# name: (run, train overrides, method overrides)
VARIANTS: dict[str, tuple[str, dict, dict]] = {
    "uniform, Adam, hypernetworks' budget": (UNIFORM, ADAM_4, {}),
    "ctrl_linear chunked, 4 epochs": (CTRL.format("ctrl_linear"), BEFORE, CHUNKED),
    "ctrl_linear chunked, batch 64": (CTRL.format("ctrl_linear"), {**BEFORE, "batch_size": 64}, CHUNKED),
    "ctrl_linear chunked, batch 64, lr 1e-3": (CTRL.format("ctrl_linear"), {**BEFORE, "batch_size": 64, "lr": 0.001}, CHUNKED),
    "ctrl_linear chunked, 12 epochs": (CTRL.format("ctrl_linear"), {"epochs": 12}, CHUNKED),
    "ctrl_linear chunked, 12 epochs, lr 1e-3": (CTRL.format("ctrl_linear"), {"epochs": 12, "lr": 0.001}, CHUNKED),
    "ctrl_linear unchunked, 4 epochs": (CTRL.format("ctrl_linear"), BEFORE, UNCHUNKED),
    "ctrl_linear unchunked, 12 epochs": (CTRL.format("ctrl_linear"), {"epochs": 12}, UNCHUNKED),
    "ctrl_linear unchunked, 12 epochs, Dirichlet(0.2)": (CTRL.format("ctrl_linear"), {"epochs": 12}, {**UNCHUNKED, "dirichlet_alpha": 0.2}),
    "ctrl_pareto chunked, 12 epochs": (CTRL.format("ctrl_pareto"), {"epochs": 12}, CHUNKED),
    "ctrl_pareto unchunked, 12 epochs": (CTRL.format("ctrl_pareto"), {"epochs": 12}, UNCHUNKED),
    "phn_ls, 4 epochs": (CTRL.format("phn_ls"), BEFORE, {}),
    "phn_ls, 12 epochs": (CTRL.format("phn_ls"), {"epochs": 12}, {}),
    "phn_epo, 12 epochs": (CTRL.format("phn_epo"), {"epochs": 12}, {}),
}


def measure(prof, data_path: Path, data: dict, workdir: Path, run_id: str, train: dict, method: dict) -> dict:
    spec = copy.deepcopy(prof.run_spec(prof.run(run_id)))
    spec["train"].update(train)
    spec["method"].update(method)
    checkpoint = workdir / "model.pt"
    start = time.perf_counter()
    train_run(spec, data_path, checkpoint, workdir / "train_log.jsonl", progress=False)
    seconds = time.perf_counter() - start
    record = evaluate_run(spec, data, checkpoint)
    if "curve" in record:
        curve = record["curve"]["test"]
        ends = curve[-1]["accuracies"], curve[0]["accuracies"]  # preferences (1, 0) and (0, 1)
        hv = record["hypervolume"]["test"]
    else:
        test = record["splits"]["test"]
        hv = hypervolume([[test["left"]["loss"], test["right"]["loss"]]], [2.0, 2.0])
        ends = ({t: test[t]["accuracy"] for t in ("left", "right")},) * 2
    return {
        "hv_test": round(float(hv), 3),
        "train_seconds": round(seconds, 1),
        "left_acc_at_1_0": ends[0]["left"],
        "right_acc_at_1_0": ends[0]["right"],
        "left_acc_at_0_1": ends[1]["left"],
        "right_acc_at_0_1": ends[1]["right"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help=f"default: all of {list(VARIANTS)}")
    parser.add_argument("--out", default="results/benchmarks/controllable_gap.csv")
    args = parser.parse_args()
    set_threads(1)  # torch and numpy BLAS
    prof = load_profile("params.yaml", "quick")
    data_path = Path("data/processed/quick/multimnist_5k.pt")
    data = load_processed(data_path)
    rows = []
    for name in args.variants or list(VARIANTS):
        run_id, train, method = VARIANTS[name]
        with tempfile.TemporaryDirectory() as tmp:
            row = {"variant": name, **measure(prof, data_path, data, Path(tmp), run_id, train, method)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
