"""Why controllable networks sit below single models: measured ablations.

    python benchmarks/controllable_gap.py [VARIANT ...] [--out results/benchmarks/controllable_gap.csv]
    python benchmarks/controllable_gap.py --profile fashion [VARIANT ...] [--out results/benchmarks/controllable_gap_fashion.csv]

Needs the profile's processed data (`snakemake --cores all paper_figures [--config
profile=fashion]` builds it). Each variant is a `multimnist_ctrl` (quick) or
`multifashion_ctrl` (fashion) run, seed 0, with one setting changed, or a single network
trained with another optimiser or budget; all train in this one process on one CPU thread and
are scored like the pipeline's runs: the test-loss hypervolume against the reference point
(2, 2) of the whole trade-off curve (11 preferences), or of the single network's one loss
vector. The accuracies at the curve's two ends show whether the preference controls the
trade-off.
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


# MultiFashion (fashion profile): the hypernetworks train with Adam 3e-3 at a constant lr for 10
# epochs; the single models with SGD (momentum 0.9) at 0.05, halved every 4 epochs.
FASHION_CTRL = "multifashion_ctrl/{}/default/seed0"
FASHION_UNIFORM = "multifashion/uniform/default/seed0"
SGD_HALVING = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "lr_halve_every": 4}
FASHION_VARIANTS: dict[str, tuple[str, dict, dict]] = {
    "ctrl_linear, as the profile (Adam 3e-3, constant lr)": (FASHION_CTRL.format("ctrl_linear"), {}, {}),
    "ctrl_linear, Adam 3e-3 halved every 4 epochs": (FASHION_CTRL.format("ctrl_linear"), {"lr_halve_every": 4}, {}),
    "ctrl_linear, the single models' SGD (0.05, momentum 0.9, halved every 4)": (FASHION_CTRL.format("ctrl_linear"), SGD_HALVING, {}),
    "ctrl_linear, Adam 3e-3 halved every 8 epochs, 20 epochs": (FASHION_CTRL.format("ctrl_linear"), {"epochs": 20, "lr_halve_every": 8}, {}),
    "uniform, as the profile (SGD, halved every 4)": (FASHION_UNIFORM, {}, {}),
    "uniform, the hypernetworks' Adam 3e-3, constant lr": (FASHION_UNIFORM, {"optimizer": "adam", "lr": 0.003, "momentum": 0.0, "lr_halve_every": None}, {}),
}
PROFILES = {  # profile: (variants, processed data)
    "quick": (VARIANTS, "data/processed/quick/multimnist_5k.pt"),
    "fashion": (FASHION_VARIANTS, "data/processed/fashion/multifashion.pt"),
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
    parser.add_argument("variants", nargs="*", help="default: all of the profile's variants (names in this file)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--out", default=None, help="default: results/benchmarks/controllable_gap[_fashion].csv")
    args = parser.parse_args()
    variants, data_file = PROFILES[args.profile]
    unknown = [name for name in args.variants if name not in variants]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; the {args.profile} profile's: {list(variants)}")
    out = args.out or f"results/benchmarks/controllable_gap{'' if args.profile == 'quick' else '_' + args.profile}.csv"
    set_threads(1)  # torch and numpy BLAS
    prof = load_profile("params.yaml", args.profile)
    data_path = Path(data_file)
    data = load_processed(data_path)
    rows = []
    for name in args.variants or list(variants):
        run_id, train, method = variants[name]
        with tempfile.TemporaryDirectory() as tmp:
            row = {"variant": name, **measure(prof, data_path, data, Path(tmp), run_id, train, method)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
