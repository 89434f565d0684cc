"""Where a Snakemake run of the pipeline spent its time, from its log and the epoch logs.

    python benchmarks/pipeline_time.py [--log .snakemake/log/<run>.snakemake.log] [--profile quick] [--cores 2]

Reads the job start and finish times of one Snakemake run (default: the newest log) and the
training epochs' seconds of every run (results/<profile>/logs/**/train_log.jsonl, written by
that run when it trained them). Prints the wall time, the jobs' seconds added up, how much of
that is training epochs, the rest of the train/evaluate jobs (start-up, evaluation, checkpoint
writes) and the other jobs (data, tables, figures, curves), and the packing bound: the jobs'
seconds over the cores, the least wall time any order of the same jobs could take. Snakemake's
log has one-second resolution, so each job is +-1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from pathlib import Path

STAMP = re.compile(r"\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]")
RULE = re.compile(r"(?:local)?rule (\w+):")
JOBID = re.compile(r"\s+jobid: (\d+)")
FINISHED = re.compile(r"Finished jobid: (\d+)")


def job_times(log: Path) -> dict[str, tuple[str, float, float]]:
    """{jobid: (rule, start s, end s)} relative to the first job's start."""
    now = None
    pending: str | None = None
    started: dict[str, tuple[str, dt.datetime]] = {}
    done: dict[str, tuple[str, dt.datetime, dt.datetime]] = {}
    for line in log.read_text().splitlines():
        if m := STAMP.match(line):
            now = dt.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := RULE.match(line):
            pending = m.group(1)
        elif (m := JOBID.match(line)) and pending is not None and now is not None:
            started[m.group(1)] = (pending, now)
            pending = None
        elif (m := FINISHED.match(line)) and m.group(1) in started and now is not None:
            rule, start = started[m.group(1)]
            done[m.group(1)] = (rule, start, now)
    if not done:
        raise SystemExit(f"{log}: no finished jobs (is it a Snakemake log of a run, not of a dry run?)")
    t0 = min(start for _, start, _ in done.values())
    return {j: (rule, (s - t0).total_seconds(), (e - t0).total_seconds()) for j, (rule, s, e) in done.items()}


def epoch_seconds(profile: str) -> float:
    total = 0.0
    for path in Path(f"results/{profile}/logs").glob("**/train_log.jsonl"):
        total += sum(json.loads(line).get("seconds", 0.0) for line in path.read_text().splitlines() if line.strip())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, help="a Snakemake log (default: the newest in .snakemake/log)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    log = args.log or max(Path(".snakemake/log").glob("*.snakemake.log"), key=lambda p: p.stat().st_mtime)
    jobs = job_times(log)
    wall = max(end for _, _, end in jobs.values())
    training = [end - start for rule, start, end in jobs.values() if rule.startswith(("train", "evaluate"))]
    other = [end - start for rule, start, end in jobs.values() if not rule.startswith(("train", "evaluate"))]
    epochs = epoch_seconds(args.profile)
    total = sum(training) + sum(other)
    print(f"log {log}")
    print(f"wall time                          {wall:7.0f} s")
    print(f"jobs                               {len(jobs):7d}   ({len(training)} train/evaluate)")
    print(f"job seconds, all                   {total:7.0f} s")
    print(f"  training epochs                  {epochs:7.0f} s   ({100 * epochs / total:.0f} %)")
    print(f"  rest of train/evaluate jobs      {sum(training) - epochs:7.0f} s   (start-up, evaluation, checkpoints)")
    print(f"  other jobs                       {sum(other):7.0f} s   (data, tables, figures, curves)")
    print(f"packing bound on {args.cores} cores          {total / args.cores:7.0f} s   (wall / bound {wall / (total / args.cores):.2f})")


if __name__ == "__main__":
    main()
