"""`mtlpareto` command line: the small interface the Snakemake rules and DVC stages call.

All logic lives in the package; each subcommand reads params.yaml (validated), does one job
and writes its outputs atomically.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from mtlpareto.errors import ConfigError, MTLParetoError

DEFAULT_PARAMS = "params.yaml"


def _profile(args: argparse.Namespace):
    from mtlpareto import pipeline
    from mtlpareto.config import load_profile

    try:
        prof = load_profile(args.params, args.profile)
    except ConfigError as err:
        raise ConfigError(naming_params_file(str(err), args.params)) from None
    return prof


def naming_params_file(message: str, params_file: str) -> str:
    """A config error that names the file it is about (`--params p2.yaml`, not "params.yaml")."""
    if str(params_file) in message:
        return message
    generic = f"{DEFAULT_PARAMS} is invalid"
    if message.startswith(generic):  # the schema check's heading does not know the file name
        return f"{params_file} is invalid" + message[len(generic):]
    return f"{params_file}: {message}"


def cmd_validate(args: argparse.Namespace) -> None:
    from mtlpareto.config import build_components

    prof = _profile(args)
    n_runs = len(prof.runs())
    n_built = build_components(prof)
    print(f"{args.params}: profile {prof.name!r} is valid ({len(prof.experiments)} experiments, {n_runs} training runs; {n_built} datasets, models and methods built)")


def cmd_fetch(args: argparse.Namespace) -> None:
    from mtlpareto import pipeline
    from mtlpareto.data import DATASETS
    from mtlpareto.io import atomic_write_json, ensure_writable

    prof = _profile(args)
    spec = prof.dataset_spec(args.dataset)
    target = Path(pipeline.manifest_path(prof, args.dataset))
    ensure_writable(target)
    manifest = DATASETS.get(spec["kind"]).fetch(spec, Path(pipeline.RAW_ROOT))
    atomic_write_json({"dataset": args.dataset, "spec": spec, "sources": manifest}, target)


def cmd_build_data(args: argparse.Namespace) -> None:
    from mtlpareto import pipeline
    from mtlpareto.data import DATASETS, dataset_options
    from mtlpareto.data.store import save_processed
    from mtlpareto.io import ensure_writable

    prof = _profile(args)
    spec = prof.dataset_spec(args.dataset)
    target = Path(pipeline.processed_path(prof, args.dataset))
    ensure_writable(target)
    data = DATASETS.get(spec["kind"]).build(root=Path(pipeline.RAW_ROOT), **dataset_options(spec))
    save_processed(data, target)
    sizes = {s: int(data[s][0].shape[0]) for s in ("train", "val", "test") if s in data}
    print(f"built {args.dataset}: {sizes}")


def _method_runs(prof, experiment: str | None, method: str | None) -> list:
    """Every run of `method` in `experiment`, in params.yaml order (names either if unknown)."""
    from mtlpareto import pipeline

    if experiment is None or method is None:
        raise MTLParetoError("--experiment and --method go together")
    prof.experiment(experiment)  # names the experiment if it is unknown
    runs = pipeline.method_runs(prof, experiment).get(method)
    if not runs:
        raise MTLParetoError(f"experiment {experiment!r} has no method {method!r}")
    return runs


def _train_one(prof, run, params_file: str, progress: bool, keep_resume: bool = False) -> None:
    from mtlpareto import pipeline
    from mtlpareto.config import build_run_method
    from mtlpareto.training import train_run
    from mtlpareto.training.run_state import RunLock, stop_on_signals

    try:  # a bad option value fails here, before any file is touched
        build_run_method(prof, run)
    except ConfigError as err:
        raise ConfigError(naming_params_file(str(err), params_file)) from None
    spec = prof.run_spec(run)
    if spec.get("anchor"):  # the files of the runs it is built on (DYMU's anchor net)
        spec["anchor_checkpoints"] = pipeline.anchor_checkpoints(prof, run)
    checkpoint = Path(pipeline.checkpoint_path(prof, run))
    # One trainer per run at a time, whichever tool started it (Snakemake, DVC, by hand): two
    # would share one resume file and epoch log.
    with RunLock(checkpoint, run.id), stop_on_signals(run.id, checkpoint):
        train_run(
            spec,
            dataset_path=Path(pipeline.processed_path(prof, prof.experiment(run.experiment)["dataset"])),
            checkpoint_path=checkpoint,
            log_path=Path(pipeline.train_log_path(prof, run)),
            threads=prof.raw.get("torch_threads", 1),
            progress=progress,
            keep_resume=keep_resume,
        )


def cmd_train(args: argparse.Namespace) -> None:
    from mtlpareto import pipeline

    prof = _profile(args)
    if (args.run is None) == (args.experiment is None and args.method is None):
        raise MTLParetoError("give either --run RUN or --experiment EXPERIMENT --method METHOD")
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    if args.run is not None:
        if args.evaluate:
            raise MTLParetoError("--evaluate goes with --experiment and --method (it writes the metrics of all the method's runs)")
        _train_one(prof, prof.run(args.run), args.params, progress)
        return
    runs = _method_runs(prof, args.experiment, args.method)
    # A job that trains several runs keeps each finished run's resume file (it holds the final
    # weights) until the whole job has succeeded: if a later run fails, Snakemake removes the
    # job's outputs, and the rerun rebuilds the finished runs' checkpoints from those files
    # instead of retraining them.
    for run in runs:
        _train_one(prof, run, args.params, progress, keep_resume=True)
    if args.evaluate:
        _evaluate_runs(prof, runs)
    for run in runs:
        Path(pipeline.checkpoint_path(prof, run)).with_name("resume.pt").unlink(missing_ok=True)


def cmd_evaluate(args: argparse.Namespace) -> None:
    prof = _profile(args)
    if (args.run is None) == (args.experiment is None and args.method is None):
        raise MTLParetoError("give either --run RUN or --experiment EXPERIMENT --method METHOD")
    _evaluate_runs(prof, [prof.run(args.run)] if args.run is not None else _method_runs(prof, args.experiment, args.method))


def _evaluate_runs(prof, runs: list) -> None:
    """Write the metrics file of each run (all of one experiment)."""
    from tqdm.auto import tqdm

    from mtlpareto import pipeline
    from mtlpareto.data.store import load_processed
    from mtlpareto.io import atomic_write_json, check_torch_file, ensure_writable
    from mtlpareto.training import evaluate_run

    from mtlpareto.training.run_state import set_threads

    set_threads(prof.raw.get("torch_threads", 1))
    # Every input checked before any work, every output written only after all runs are
    # evaluated: a bad checkpoint fails the job at once, naming itself, and replaces nothing.
    checkpoints = [Path(pipeline.checkpoint_path(prof, run)) for run in runs]
    for path in checkpoints:
        check_torch_file(path, "checkpoint", f"delete it and rerun `snakemake --cores all paper_figures` to retrain it (or `mtlpareto train --run {_run_of(path, runs, checkpoints)}`)")
    targets = [Path(pipeline.metrics_path(prof, run)) for run in runs]
    for target in targets:
        ensure_writable(target)
    dataset = Path(pipeline.processed_path(prof, prof.experiment(runs[0].experiment)["dataset"]))
    data = load_processed(dataset)
    records = []
    for run, path in tqdm(list(zip(runs, checkpoints)), desc="evaluate", disable=len(runs) == 1 or not sys.stderr.isatty(), leave=False):
        result = evaluate_run(prof.run_spec(run), data, path)
        # The files behind the numbers, for figures that show the model's predictions.
        files = {"checkpoint": str(path), "dataset": str(dataset)}
        records.append({**pipeline.run_fields(run), "run": run.id, "preference": run.preference, "task": run.task, "files": files, **result})
    for record, target in zip(records, targets):
        atomic_write_json(record, target)


def _run_of(path: Path, runs: list, checkpoints: list[Path]) -> str:
    return runs[checkpoints.index(path)].id


def _experiment_frame(prof, experiment: str):
    from mtlpareto import pipeline
    from mtlpareto.metrics.aggregate import load_metrics

    from mtlpareto.io import read_json_file

    paths = [Path(p) for p in pipeline.experiment_metrics(prof, experiment)]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise MTLParetoError(f"{len(missing)} metrics files missing for {experiment!r}, e.g. {missing[0]}; run the pipeline first")
    for path in paths:  # a truncated or hand-edited file: name it, not a JSON traceback
        read_json_file(path, "metrics file", "delete it and rerun `snakemake --cores all paper_figures` to re-evaluate")
    return load_metrics(paths)


def cmd_table(args: argparse.Namespace) -> None:
    from mtlpareto import pipeline
    from mtlpareto.io import ensure_writable
    from mtlpareto.metrics.tables import write_table

    prof = _profile(args)
    df = _experiment_frame(prof, args.experiment)
    csv_path, md_path, html_path = (Path(p) for p in pipeline.table_paths(prof, args.experiment, args.table))
    ensure_writable(csv_path)
    summary = write_table(args.table, df, args.experiment, f"{args.experiment}: {args.table} ({prof.name} profile)", csv_path, md_path, html_path)
    print(md_path.read_text() if len(summary) else f"empty table {csv_path}")


def cmd_curves(args: argparse.Namespace) -> None:
    from mtlpareto import pipeline
    from mtlpareto.data import task_names
    from mtlpareto.io import atomic_write_text, ensure_writable
    from mtlpareto.metrics.curves import training_curves_csv

    prof = _profile(args)
    logs = {pipeline.curve_run_name(r): Path(pipeline.train_log_path(prof, r)) for r in prof.runs(args.experiment)}
    tasks = task_names(prof.dataset_spec(prof.experiment(args.experiment)["dataset"]))
    path = Path(pipeline.curves_path(prof, args.experiment))
    ensure_writable(path)
    atomic_write_text(training_curves_csv(logs, tasks), path)
    print(f"{path}: {len(logs)} runs")


def cmd_figure(args: argparse.Namespace) -> None:
    from mtlpareto import pipeline
    from mtlpareto.figures import FIGURES, save_figure
    from mtlpareto.io import ensure_writable

    prof = _profile(args)
    df = _experiment_frame(prof, args.experiment)
    fig = FIGURES.get(args.figure)(df, f"{args.experiment} ({prof.name} profile)")
    paths = [Path(p) for p in pipeline.figure_paths(prof, args.experiment, args.figure)]
    ensure_writable(paths[0])
    save_figure(fig, paths)


def _current_numbers(prof) -> dict:
    from mtlpareto import pipeline
    from mtlpareto.metrics.reported import current_numbers

    csvs = {}
    for name, exp in prof.experiments.items():
        for table in exp.get("tables", []):
            path = Path(pipeline.table_paths(prof, name, table)[0])
            if not path.exists():
                raise MTLParetoError(f"table {path} missing: run `snakemake --cores all paper_figures` first")
            csvs[(name, table)] = path
    return current_numbers(csvs)


def cmd_check_reported(args: argparse.Namespace) -> None:
    from mtlpareto.metrics.reported import check, load_reported, reported_path

    prof = _profile(args)
    path = Path(args.reported) if args.reported else reported_path(prof.name)
    reported, band = load_reported(path)
    problems = check(_current_numbers(prof), reported, band)
    if problems:
        raise MTLParetoError(f"{len(problems)} of {len(reported)} reported numbers left their band ({path}):\n  " + "\n  ".join(problems))
    print(f"all {len(reported)} reported numbers of {path} are within their bands")


def cmd_check_sample(args: argparse.Namespace) -> None:
    """Retrain a hash-chosen sample of runs in a scratch directory; metrics must be bitwise equal."""
    import contextlib
    import os
    import tempfile

    from mtlpareto import pipeline
    from mtlpareto.metrics.sample_check import compare_metrics, sample_runs

    prof = _profile(args)
    repo = Path.cwd()
    params = str(Path(args.params).resolve())
    runs = sample_runs(prof.runs(), args.runs)
    committed = {run.id: Path(pipeline.metrics_path(prof, run)) for run in runs}  # relative to the repository
    missing = [str(path) for path in committed.values() if not (repo / path).is_file()]
    if missing:
        raise MTLParetoError(f"committed metrics missing, e.g. {missing[0]}: run the profile first (`snakemake --cores all paper_figures --config profile={prof.name}`)")
    print(f"check-sample: {len(runs)} of {len(prof.runs())} runs of profile {prof.name!r}: " + ", ".join(run.id for run in runs), flush=True)
    scratch = contextlib.nullcontext(args.workdir) if args.workdir else tempfile.TemporaryDirectory(prefix="mtlpareto-sample-")
    with scratch as workdir:
        work = Path(workdir).resolve()
        # The pipeline's relative paths, resolved in the scratch directory. Raw downloads are
        # shared (linked), except the profile's manifests: rewriting them would make the
        # repository's processed data look older than its inputs to Snakemake.
        scratch_raw, repo_raw = work / pipeline.RAW_ROOT, repo / pipeline.RAW_ROOT
        scratch_raw.mkdir(parents=True, exist_ok=True)
        for entry in sorted(repo_raw.iterdir()) if repo_raw.is_dir() else []:
            if entry.name != prof.name and not (scratch_raw / entry.name).exists():
                (scratch_raw / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        os.chdir(work)
        try:
            datasets = sorted({prof.experiment(run.experiment)["dataset"] for run in runs})
            # One thread, as Snakemake runs the build-data job (threads: 1): a float32 reduction
            # such as the input mean has other last bits on more threads.
            from mtlpareto.training.run_state import set_threads

            set_threads(1)
            for dataset in datasets:  # the rules' fetch and build-data, then each run's train + evaluate
                fields = argparse.Namespace(params=params, profile=prof.name, dataset=dataset)
                cmd_fetch(fields)
                cmd_build_data(fields)
            problems = []
            for run in runs:
                _train_one(prof, run, params, progress=False)
                _evaluate_runs(prof, [run])
                problem = compare_metrics(run.id, repo / committed[run.id], work / committed[run.id], label=str(committed[run.id]))
                print(f"  {run.id}: {'DIFFERS' if problem else 'bitwise equal'}", flush=True)
                if problem:
                    problems.append(problem)
        finally:
            os.chdir(repo)
    if problems:
        raise MTLParetoError(f"{len(problems)} of {len(runs)} sampled runs do not reproduce their committed metrics:\n  " + "\n  ".join(problems))
    print(f"all {len(runs)} sampled runs reproduce their committed metrics bitwise")
    if not args.skip_reported:
        cmd_check_reported(argparse.Namespace(params=args.params, profile=prof.name, reported=args.reported))


def cmd_update_reported(args: argparse.Namespace) -> None:
    from mtlpareto.metrics.reported import Band, reported_path, write_reported

    prof = _profile(args)
    path = Path(args.reported) if args.reported else reported_path(prof.name)
    numbers = _current_numbers(prof)
    write_reported(path, prof.name, numbers, Band(abs=args.abs_tol, rel=args.rel_tol))
    print(f"wrote {len(numbers)} numbers to {path}")


def cmd_dvc_yaml(args: argparse.Namespace) -> None:
    from mtlpareto import pipeline

    prof = _profile(args)
    text = pipeline.dvc_yaml(prof, args.params)
    args.output = args.output or pipeline.dvc_yaml_path(prof)
    if args.check:
        current = Path(args.output).read_text() if Path(args.output).exists() else ""
        if current != text:
            raise MTLParetoError(f"{args.output} is stale: regenerate it with `mtlpareto dvc-yaml`")
        print(f"{args.output} is up to date")
        return
    from mtlpareto.io import atomic_write_text

    atomic_write_text(text, Path(args.output))
    print(f"wrote {args.output} ({text.count(chr(10))} lines)")


def cmd_targets(args: argparse.Namespace) -> None:
    from mtlpareto import pipeline

    prof = _profile(args)
    outs = sorted(o for st in pipeline.stages(prof, args.params) for o in st.outs + st.metrics)
    print(json.dumps(outs, indent=1))


def cmd_predict(args: argparse.Namespace) -> None:
    """Scores (or the solution) of a trained controllable run at one preference, as JSON."""
    from mtlpareto import pipeline
    from mtlpareto.controllable import load_controllable, parse_preference
    from mtlpareto.controllable import predict, predictions_csv
    from mtlpareto.data.store import load_processed
    from mtlpareto.io import atomic_write_json, atomic_write_text, check_torch_file
    from mtlpareto.methods import METHODS

    prof = _profile(args)
    run = prof.run(args.run)
    if METHODS.get(run.method).learns == "dymu":
        return _predict_dymu(args, prof, run)
    if args.budget is not None:
        raise MTLParetoError(f"run {run.id}: --budget is for DYMU runs (method dymu); {run.method!r} has a fixed architecture")
    if METHODS.get(run.method).learns != "hypernetwork":
        raise MTLParetoError(f"run {run.id}: {run.method!r} trains one network per run; `predict` needs a controllable method (ctrl_linear, ctrl_pareto, phn_ls, phn_epo)")
    checkpoint = Path(pipeline.checkpoint_path(prof, run))
    check_torch_file(checkpoint, "checkpoint", f"delete it and rerun `snakemake --cores all paper_figures` to retrain it (or `mtlpareto train --run {run.id}`)")
    model = load_controllable(checkpoint)
    preference = parse_preference(_preference_text(args.preference), model.n_tasks)
    data = load_processed(Path(pipeline.processed_path(prof, prof.experiment(run.experiment)["dataset"])))
    result = {"run": run.id, "split": args.split, **predict(model, data, args.split, preference)}
    if args.predictions:
        if "synthetic" in model.meta:
            raise MTLParetoError("--predictions needs a dataset with samples; a synthetic run has a solution, not predictions")
        atomic_write_text(predictions_csv(model, data, args.split), Path(args.predictions))
        result["predictions"] = args.predictions
    if args.output:
        atomic_write_json(result, Path(args.output))
    print(json.dumps(result, indent=1))


def _predict_dymu(args: argparse.Namespace, prof, run) -> None:
    """A DYMU run at (--preference, --budget): the chosen tree (printed), its cost and scores, as JSON."""
    from mtlpareto import pipeline
    from mtlpareto.controllable import parse_preference
    from mtlpareto.data.store import load_processed
    from mtlpareto.io import atomic_write_json, check_torch_file
    from mtlpareto.training.dymu import load_dymu, predict_dymu

    if args.budget is None:
        raise MTLParetoError(f"run {run.id} is a DYMU run: give --budget C in [0, 1] (0: no pressure to share, 1: the strongest) beside --preference")
    if args.predictions:
        raise MTLParetoError("--predictions writes predicted classes; a DYMU run's tasks are dense maps (use the Python API, mtlpareto.training.dymu.load_dymu)")
    checkpoint = Path(pipeline.checkpoint_path(prof, run))
    check_torch_file(checkpoint, "checkpoint", f"delete it and rerun `snakemake --cores all paper_figures` to retrain it (or `mtlpareto train --run {run.id}`)")
    model = load_dymu(checkpoint)
    preference = parse_preference(_preference_text(args.preference), model.n_tasks)
    data = load_processed(Path(pipeline.processed_path(prof, prof.experiment(run.experiment)["dataset"])))
    result = {"run": run.id, "split": args.split, **predict_dymu(model, data, args.split, preference, args.budget)}
    if args.output:
        atomic_write_json(result, Path(args.output))
    print(result["text"], file=sys.stderr)
    print(json.dumps(result, indent=1))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtlpareto", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        p.add_argument("--profile", default=None, help="profile to use (default: the file's `profile`)")
        p.set_defaults(func=func)
        return p

    add("validate", cmd_validate, "validate params.yaml and count the runs")
    add("fetch", cmd_fetch, "download/verify a dataset's raw files").add_argument("--dataset", required=True)
    add("build-data", cmd_build_data, "build a processed dataset").add_argument("--dataset", required=True)
    p = add("train", cmd_train, "train one run (EXPERIMENT/METHOD/VARIANT/seedN), or all of a method's in an experiment")
    p.add_argument("--run", help="one run (EXPERIMENT/METHOD/VARIANT/seedN)")
    p.add_argument("--experiment")
    p.add_argument("--method")
    p.add_argument("--evaluate", action="store_true", help="then write the runs' metrics, as `mtlpareto evaluate` (with --experiment and --method)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: when stderr is a terminal)")
    p = add("evaluate", cmd_evaluate, "evaluate trained runs on val and test: one run, or all of a method's in an experiment")
    p.add_argument("--run", help="one run (EXPERIMENT/METHOD/VARIANT/seedN)")
    p.add_argument("--experiment")
    p.add_argument("--method")
    p = add("table", cmd_table, "write an experiment's table (CSV + Markdown)")
    p.add_argument("--experiment", required=True)
    p.add_argument("--table", required=True)
    p = add("figure", cmd_figure, "draw an experiment's figure (PNG + PDF)")
    p.add_argument("--experiment", required=True)
    p.add_argument("--figure", required=True)
    p = add("curves", cmd_curves, "write an experiment's per-epoch training losses (CSV, for dvc plots)")
    p.add_argument("--experiment", required=True)
    p = add("dvc-yaml", cmd_dvc_yaml, "generate the profile's dvc.yaml from params.yaml")
    p.add_argument("--output", default=None, help="default: results/<profile>/dvc.yaml")
    p.add_argument("--check", action="store_true", help="fail if the file differs from what would be generated")
    add("targets", cmd_targets, "list every output of the pipeline (JSON)")
    p = add("check-reported", cmd_check_reported, "fail if a table number left its reported band")
    p.add_argument("--reported", default=None, help="default: results/reported/<profile>.yaml")
    p = add("check-sample", cmd_check_sample, "retrain a deterministic sample of runs (by SHA-256 of their ids); fail unless their metrics equal the committed ones bitwise, then check-reported")
    p.add_argument("--runs", type=int, default=3, help="how many runs to retrain (default 3)")
    p.add_argument("--workdir", default=None, help="scratch directory to retrain in (default: a temporary one, removed after)")
    p.add_argument("--reported", default=None, help="default: results/reported/<profile>.yaml")
    p.add_argument("--skip-reported", action="store_true", help="only the bitwise rerun, not check-reported")
    p = add("update-reported", cmd_update_reported, "write the current table numbers as the reported ones")
    p.add_argument("--reported", default=None, help="default: results/reported/<profile>.yaml")
    p.add_argument("--abs-tol", type=float, default=0.01, help="band half-width (default 0.01: CPU runs are deterministic)")
    p.add_argument("--rel-tol", type=float, default=0.0)
    p = add("predict", cmd_predict, "evaluate a controllable run at one preference (e.g. --preference 0.3,0.7)")
    p.add_argument("--run", required=True)
    p.add_argument("--preference", required=True, help="comma-separated non-negative weights, one per task; normalised to sum 1")
    p.add_argument("--split", default="test", help="dataset split to score (default: test)")
    p.add_argument("--output", default=None, help="also write the JSON result to this file")
    p.add_argument("--predictions", default=None, help="write per-sample predicted classes (CSV) to this file")
    p.add_argument("--budget", type=float, default=None, help="DYMU runs: the compute-budget term c in [0, 1] (1: share the most)")
    return parser


def _preference_text(text: str) -> str:
    """The --preference vector checked here and scaled by its largest entry.

    Scaling keeps huge weights finite when they are summed (1e308,1e308 is the same preference
    as 1,1, not "all zero"); the normalisation to sum 1 is the model's.
    """
    parts = [s.strip() for s in str(text).split(",")]
    try:
        values = [float(s) for s in parts]
    except ValueError:
        raise ConfigError(f"--preference {text!r}: expected comma-separated numbers, e.g. 0.3,0.7") from None
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(f"--preference {text!r}: every weight must be a finite number")
    if any(v < 0 for v in values):
        raise ConfigError(f"--preference {text!r}: weights must be >= 0 (a preference says how much each task counts)")
    largest = max(values)
    if largest == 0:
        raise ConfigError(f"--preference {text!r} is all zero; at least one task needs a positive weight")
    return ",".join(repr(v / largest) for v in values)


def _attach_values(argv: list[str]) -> list[str]:
    """`--preference -1,2` as `--preference=-1,2`: argparse would read "-1,2" as an option."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--preference":
            value = next(it, None)
            out.append(arg if value is None else f"{arg}={value}")
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_attach_values(sys.argv[1:] if argv is None else list(argv)))
    try:
        args.func(args)
    except MTLParetoError as exc:
        print(f"mtlpareto {args.command}: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
