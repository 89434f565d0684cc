"""Seconds per training epoch with contiguous (NCHW) vs channels_last (NHWC) image batches.

Runs real `train_run` epochs of the quick profile's MultiMNIST runs (after the pipeline has
built data/processed/multimnist_5k.pt), alternating the two layouts so that a machine whose
speed drifts does not favour one of them:

    python benchmarks/memory_format.py
    python benchmarks/memory_format.py --runs multimnist/uniform/default/seed0 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
from pathlib import Path

from mtlpareto import pipeline
from mtlpareto.config import load_profile
from mtlpareto.training import train_run

FORMATS = ("contiguous", "channels_last")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--runs", nargs="+", default=["multimnist/uniform/default/seed0", "multimnist/mgda/default/seed0"])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    prof = load_profile(args.params)
    print(f"{'run':40s} {'format':14s} seconds/epoch (median of {args.repeats})")
    for run_id in args.runs:
        run = prof.run(run_id)
        dataset = Path(pipeline.processed_path(prof, prof.experiment(run.experiment)["dataset"]))
        if not dataset.exists():
            raise SystemExit(f"{dataset} is missing: run `snakemake --cores all paper_figures` (or dvc pull) first")
        seconds: dict[str, list[float]] = {f: [] for f in FORMATS}
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeats):
                for fmt in FORMATS:
                    spec = copy.deepcopy(prof.run_spec(run))
                    spec["train"].update(epochs=1, memory_format=fmt)
                    out = Path(tmp) / fmt
                    train_run(spec, dataset, out / "model.pt", out / "log.jsonl", threads=1, progress=False)
                    seconds[fmt].append(json.loads((out / "log.jsonl").read_text().splitlines()[-1])["seconds"])
        for fmt in FORMATS:
            print(f"{run_id:40s} {fmt:14s} {statistics.median(seconds[fmt]):.2f}")


if __name__ == "__main__":
    main()
