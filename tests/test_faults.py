"""Fault injection (issue 16): one test per way a user lost results or got a traceback.

Each test copies one small project that ran the main command to completion (its "committed"
results), injects a fault, runs what a user would run, and checks that (a) the user is told
what is wrong, naming the file or params.yaml path, with no traceback, (b) no result that
existed before is gone (and a failed job left the previous version byte for byte), and
(c) the next main command restores every declared output.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, project_files, tiny_params
from mtlpareto import pipeline
from mtlpareto.config import load_profile

pytestmark = pytest.mark.slow

RUN = "multimnist/mgda/default/seed1"  # the run the interruption tests train again
EPOCHS = 4


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _main_cmd(*extra: str) -> list[str]:
    # The target before options that take several values (--config, --configfile swallow it).
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "paper_figures", "--cores", "2", *extra]


def _main(root: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_main_cmd(*extra), cwd=root, env=_env(), capture_output=True, text=True, timeout=600)


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtlpareto", *args], cwd=root, env=_env(), capture_output=True, text=True, timeout=300)


def _params() -> dict:
    params = tiny_params(methods={"uniform": {}, "mgda": {}}, seeds=(0, 1), epochs=EPOCHS)
    # Small batches: an epoch lasts long enough (~0.5 s) to interrupt a run in the middle.
    params["profiles"]["tiny"]["experiments"]["multimnist"]["train"]["batch_size"] = 8
    return params


def _outputs(root: Path, params_file: str = "params.yaml") -> dict[str, bytes]:
    """Every declared output of the project and its bytes."""
    prof = load_profile(root / params_file)
    return {p: (root / p).read_bytes() for p in pipeline.declared_outputs(prof, params_file) if (root / p).exists()}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("built")
    (root / "params.yaml").write_text(yaml.safe_dump(_params()))
    project_files(root)
    res = _main(root)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    outputs = _outputs(root)
    assert len(outputs) == len(pipeline.declared_outputs(load_profile(root / "params.yaml")))
    return root, outputs


@pytest.fixture
def project(built, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(built[0], root, symlinks=True)  # copy2 keeps the times Snakemake compares
    return root


def _assert_no_traceback(res: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in res.stdout + res.stderr, (res.stdout + res.stderr)[-3000:]


def _assert_nothing_lost(root: Path, before: dict[str, bytes], unchanged: bool = True) -> None:
    missing = [p for p in before if not (root / p).exists()]
    assert not missing, f"results gone: {missing}"
    if unchanged:
        changed = [p for p, data in before.items() if (root / p).read_bytes() != data]
        assert not changed, f"results changed by a failed job: {changed}"


def _assert_restored(root: Path, before: dict[str, bytes], *extra: str) -> subprocess.CompletedProcess:
    """The next main command succeeds, every declared output is back, then nothing is left to do."""
    res = _main(root, *extra)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    _assert_nothing_lost(root, before, unchanged=False)
    plan = _main(root, "-n", *extra)
    assert "Nothing to be done" in plan.stdout + plan.stderr, plan.stdout[-2000:]
    return res


def _epochs(root: Path, run_id: str) -> list[int]:
    prof = load_profile(root / "params.yaml")
    log = root / pipeline.train_log_path(prof, prof.run(run_id))
    return [json.loads(line)["epoch"] for line in log.read_text().splitlines()]


def _paths(root: Path, run_id: str) -> tuple[Path, Path, Path]:
    prof = load_profile(root / "params.yaml")
    run = prof.run(run_id)
    checkpoint = root / pipeline.checkpoint_path(prof, run)
    return checkpoint, checkpoint.with_name("resume.pt"), root / pipeline.train_log_path(prof, run)


def _start_training_again(root: Path, keep_checkpoint: bool = False, new_session: bool = False) -> tuple[subprocess.Popen, Path]:
    """Start the main command training RUN again; return once it saved an epoch.

    RUN's checkpoint is deleted (a first training), or kept and retrained (`--forcerun`).
    """
    checkpoint, resume, log = _paths(root, RUN)
    extra = ["--forcerun", str(checkpoint.relative_to(root))] if keep_checkpoint else []
    if not keep_checkpoint:
        checkpoint.unlink()
    log.unlink()
    proc = subprocess.Popen(_main_cmd(*extra), cwd=root, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=new_session)
    deadline = time.monotonic() + 120
    while not (resume.exists() and log.exists() and log.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, "the run never saved an epoch"
        time.sleep(0.02)
    return proc, checkpoint


def _train_pids(run_id: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"train" in cmd and run_id.encode() in cmd and not any(b"bash" in c for c in cmd[:1]):
            pids.append(int(entry))
    return pids


# --------------------------------------------------------------------------- Why, bullet 1


def test_a_failed_evaluate_job_keeps_every_seeds_metrics(project, built):
    _, before = built
    checkpoint, _, _ = _paths(project, "multimnist/uniform/default/seed1")
    with open(checkpoint, "r+b") as fh:
        fh.truncate(checkpoint.stat().st_size // 2)
    res = _main(project)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert f"checkpoint {checkpoint.relative_to(project)} is unreadable" in out and "delete it and rerun" in out
    _assert_no_traceback(res)
    _assert_nothing_lost(project, {p: b for p, b in before.items() if p != str(checkpoint.relative_to(project))})

    checkpoint.unlink()  # what the message says to do
    _assert_restored(project, before)
    assert _outputs(project) == before  # retrained and re-evaluated to the same bytes (deterministic CPU runs)


# --------------------------------------------------------------------------- Why, bullet 2


def test_a_killed_training_job_is_resumed_by_the_main_command_with_a_complete_log(project, built):
    _, before = built
    proc, checkpoint = _start_training_again(project)
    for pid in _train_pids(RUN):
        os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out[-2000:]
    assert not checkpoint.exists() and checkpoint.with_name("resume.pt").exists()
    _assert_nothing_lost(project, {p: b for p, b in before.items() if p != str(checkpoint.relative_to(project))})

    res = _assert_restored(project, before)
    assert "resuming after epoch" in res.stdout + res.stderr
    assert _epochs(project, RUN) == list(range(1, EPOCHS + 1))
    assert _outputs(project) == before  # the resumed run reached the uninterrupted run's weights


# --------------------------------------------------------------------------- Why, bullet 3


def test_a_value_typo_fails_naming_its_path_and_keeps_the_good_checkpoints(project, built):
    _, before = built
    good = (project / "params.yaml").read_text()
    params = yaml.safe_load(good)
    params["profiles"]["tiny"]["experiments"]["multimnist"]["methods"]["mgda"] = {"solver": "exactt"}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    res = _main(project)
    assert res.returncode != 0
    assert "params.yaml: profiles.tiny.experiments.multimnist.methods.mgda: solver: 'exactt' is not one of exact, frank_wolfe" in res.stdout + res.stderr
    _assert_no_traceback(res)
    _assert_nothing_lost(project, before)

    (project / "params.yaml").write_text(good)
    _assert_restored(project, before)


# --------------------------------------------------------------------------- Why, bullet 4


def test_corrupt_and_truncated_files_are_named_without_a_traceback(project, built):
    _, before = built
    # evaluate: a truncated checkpoint
    checkpoint, resume, _ = _paths(project, "multimnist/uniform/default/seed0")
    original = checkpoint.read_bytes()
    checkpoint.write_bytes(original[:1000])
    res = _cli(project, "evaluate", "--experiment", "multimnist", "--method", "uniform")
    assert res.returncode == 2 and f"checkpoint {checkpoint.relative_to(project)} is unreadable" in res.stderr, res.stderr
    _assert_no_traceback(res)
    checkpoint.write_bytes(original)

    # train: a corrupt resume file
    resume.write_bytes(b"not a torch file")
    res = _cli(project, "train", "--run", "multimnist/uniform/default/seed0")
    assert res.returncode == 2 and f"resume file {resume.relative_to(project)} is unreadable" in res.stderr, res.stderr
    assert "delete it to restart" in res.stderr
    _assert_no_traceback(res)
    resume.unlink()

    # predict: a truncated controllable checkpoint (a second params file with a controllable method)
    ctrl = tiny_params(methods={"ctrl_linear": {}})
    (project / "ctrl.yaml").write_text(yaml.safe_dump(ctrl))
    prof = load_profile(project / "ctrl.yaml")
    ctrl_checkpoint = project / pipeline.checkpoint_path(prof, prof.run("multimnist/ctrl_linear/default/seed0"))
    ctrl_checkpoint.parent.mkdir(parents=True)
    ctrl_checkpoint.write_bytes(original[:1000])
    res = _cli(project, "predict", "--params", "ctrl.yaml", "--run", "multimnist/ctrl_linear/default/seed0", "--preference", "0.5,0.5")
    assert res.returncode == 2 and f"checkpoint {ctrl_checkpoint.relative_to(project)} is unreadable" in res.stderr, res.stderr
    _assert_no_traceback(res)
    shutil.rmtree(ctrl_checkpoint.parent)

    # table: a truncated metrics file
    metrics = project / pipeline.metrics_path(load_profile(project / "params.yaml"), load_profile(project / "params.yaml").run("multimnist/mgda/default/seed0"))
    metrics.write_text(metrics.read_text()[:40])
    res = _cli(project, "table", "--experiment", "multimnist", "--table", "accuracy")
    assert res.returncode == 2 and f"metrics file {metrics.relative_to(project)} is unreadable" in res.stderr, res.stderr
    _assert_no_traceback(res)
    metrics.unlink()  # what the message says to do

    _assert_restored(project, before)
    assert _outputs(project) == before


def test_a_read_only_results_directory_is_named(project, built, monkeypatch, capsys):
    from mtlpareto import cli
    from mtlpareto import io as mtl_io

    _, before = built
    results = project / "results" / "tiny"
    dirs = [d for d in results.rglob("*") if d.is_dir()] + [results]
    for d in dirs:
        d.chmod(0o555)
    if os.geteuid() == 0:  # root writes through permissions: refuse as the kernel would for a user
        real_mkstemp = tempfile.mkstemp

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and Path(dir).resolve().is_relative_to(results.resolve()):
                raise PermissionError(errno.EACCES, "Permission denied", str(dir))
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(mtl_io.tempfile, "mkstemp", refuse)
    monkeypatch.chdir(project)
    try:
        for args, path in [
            (["table", "--experiment", "multimnist", "--table", "accuracy"], "results/tiny/tables/multimnist_accuracy.csv"),
            (["evaluate", "--experiment", "multimnist", "--method", "uniform"], "results/tiny/runs/multimnist/uniform/default/seed0/metrics.json"),
            (["train", "--run", "multimnist/uniform/default/seed0", "--no-progress"], "results/tiny/checkpoints/multimnist/uniform/default/seed0/.train.lock"),
        ]:
            assert cli.main(args) == 2
            err = capsys.readouterr().err
            assert f"cannot write {path} (Permission denied)" in err and "writable" in err, err
    finally:
        for d in dirs:
            d.chmod(0o755)
    monkeypatch.undo()
    _assert_nothing_lost(project, before)
    _assert_restored(project, before)


# --------------------------------------------------------------------------- Why, bullet 5


@pytest.mark.parametrize("how", ["kill <snakemake pid>", "Ctrl-C"])
def test_a_signal_stops_training_at_once_and_the_run_resumes(project, built, how):
    _, before = built
    ctrl_c = how == "Ctrl-C"
    # Ctrl-C: the terminal signals Snakemake's whole process group; this run retrains a kept checkpoint.
    proc, checkpoint = _start_training_again(project, keep_checkpoint=ctrl_c, new_session=ctrl_c)
    started = time.monotonic()
    if ctrl_c:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    stopped_after = time.monotonic() - started
    assert proc.returncode != 0
    name = "SIGINT" if ctrl_c else "SIGTERM"
    assert f"run {RUN} stopped by {name}; resume file" in out and "is intact" in out, out[-3000:]
    assert stopped_after < 10, f"took {stopped_after:.1f} s"
    assert _epochs(project, RUN) != list(range(1, EPOCHS + 1)), "the run finished: it was not stopped"
    assert checkpoint.with_name("resume.pt").exists()
    kept = before if ctrl_c else {p: b for p, b in before.items() if p != str(checkpoint.relative_to(project))}
    _assert_nothing_lost(project, kept)

    _assert_restored(project, before)
    assert _epochs(project, RUN) == list(range(1, EPOCHS + 1))  # no epoch lost, none twice
    assert _outputs(project) == before


def test_a_ctrl_c_that_reaches_the_trainer_before_snakemake_still_resumes(project, built):
    # The terminal signals both; when the trainer's job fails before Snakemake has begun to shut
    # down, Snakemake restores the previous outputs and records the job as done, and the next
    # run would not resume it. The trainer's grace after SIGINT (run_state.SIGINT_GRACE_SECONDS)
    # keeps that order; here Snakemake gets the signal 1.5 s after the trainer.
    _, before = built
    proc, checkpoint = _start_training_again(project, keep_checkpoint=True, new_session=True)
    trainers = _train_pids(RUN)
    assert trainers, "no trainer process found"
    for pid in trainers:
        os.kill(pid, signal.SIGINT)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0 and f"run {RUN} stopped by SIGINT; resume file" in out, out[-3000:]
    assert checkpoint.with_name("resume.pt").exists()
    _assert_nothing_lost(project, before)
    _assert_restored(project, before)
    assert _epochs(project, RUN) == list(range(1, EPOCHS + 1))  # resumed: no epoch lost, none twice
    assert _outputs(project) == before


def test_a_second_trainer_and_snakemake_beside_dvc_are_refused(project, built):
    _, before = built
    proc, checkpoint = _start_training_again(project)
    # Snakemake's trainer paused (it keeps its lock) so that it cannot finish first; meanwhile,
    # what `dvc repro` runs for the same stage:
    trainers = _train_pids(RUN)
    for pid in trainers:
        os.kill(pid, signal.SIGSTOP)
    try:
        res = _cli(project, "train", "--run", RUN)
    finally:
        for pid in trainers:
            os.kill(pid, signal.SIGCONT)
    assert res.returncode == 2
    assert f"run {RUN} is already being trained by process" in res.stderr and "Wait for that run" in res.stderr, res.stderr
    _assert_no_traceback(res)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert _epochs(project, RUN) == list(range(1, EPOCHS + 1))
    assert _outputs(project) == before

    # Snakemake refuses to start while a DVC command holds the repository lock.
    import zc.lockfile

    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "init", "-q"], cwd=project, check=True, env=_env())
    (project / pipeline.metrics_path(load_profile(project / "params.yaml"), load_profile(project / "params.yaml").run(RUN))).unlink()
    lock = zc.lockfile.LockFile(str(project / pipeline.DVC_LOCK))
    try:
        res = _main(project)
    finally:
        lock.close()
    assert res.returncode != 0
    assert "a DVC command (dvc repro, commit, pull, ...) is running in this repository (.dvc/tmp/lock is locked)" in res.stdout + res.stderr
    _assert_restored(project, before)


# --------------------------------------------------------------------------- Why, bullet 6


def test_paths_with_spaces_and_another_params_file(built, tmp_path):
    _, before = built
    root = tmp_path / "a project with spaces"
    shutil.copytree(built[0], root, symlinks=True)
    (root / "params.yaml").rename(root / "my params.yaml")
    prof = load_profile(root / "my params.yaml")
    manifest = pipeline.manifest_path(prof, "multimnist_5k")
    for path in (pipeline.metrics_path(prof, prof.run("multimnist/uniform/default/seed0")), *pipeline.table_paths(prof, "multimnist", "accuracy")):
        (root / path).unlink()
    # -p prints the commands; another params file changes them, so every job reruns (same bytes)
    res = _main(root, "-p", "--configfile", "my params.yaml")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "--params 'my params.yaml'" in res.stdout + res.stderr
    assert {p: (root / p).read_bytes() for p in before} == before
    assert (root / manifest).exists()

    # errors about another params file name that file
    broken = yaml.safe_load((root / "my params.yaml").read_text())
    broken["profiles"]["tiny"]["experiments"]["multimnist"]["train"]["optimiser"] = "sgd"
    (root / "p2.yaml").write_text(yaml.safe_dump(broken))
    res = _cli(root, "validate", "--params", "p2.yaml")
    assert res.returncode == 2 and "p2.yaml is invalid" in res.stderr and "params.yaml" not in res.stderr, res.stderr
    res = _main(root, "--configfile", "p2.yaml")
    assert res.returncode != 0 and "p2.yaml is invalid" in res.stdout + res.stderr
    _assert_no_traceback(res)
    assert {p: (root / p).read_bytes() for p in before} == before


# --------------------------------------------------------------------------- Why, bullet 8


def test_preferences_that_start_with_a_minus_or_overflow_are_handled(tmp_path, monkeypatch, capsys):
    from mtlpareto import cli

    params = {
        "profile": "t",
        "profiles": {"t": {
            "device": "cpu", "seeds": [0],
            "datasets": {"syn": {"kind": "synthetic", "problem": "sine_fonseca", "dim": 4, "steps_per_epoch": 10}},
            "experiments": {"synthetic": {
                "dataset": "syn", "model": {"name": "decision_vector"},
                "train": {"epochs": 1, "batch_size": 1, "optimizer": "adam", "lr": 0.01},
                "methods": {"ctrl_linear": {"hidden_dim": 8, "chunk_size": None, "eval_points": 3, "hv_reference": 1.0}},
            }},
        }},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    run = "synthetic/ctrl_linear/default/seed0"
    for args in (["fetch", "--dataset", "syn"], ["build-data", "--dataset", "syn"], ["train", "--run", run, "--no-progress"]):
        assert cli.main(args) == 0
    capsys.readouterr()

    assert cli.main(["predict", "--run", run, "--preference", "-1,2"]) == 2
    assert "--preference '-1,2': weights must be >= 0" in capsys.readouterr().err
    assert cli.main(["predict", "--run", run, "--preference", "1e308,1e308"]) == 0
    assert json.loads(capsys.readouterr().out)["preference"] == [0.5, 0.5]
    assert cli.main(["predict", "--run", run, "--preference", "1e309,1"]) == 2
    assert "every weight must be a finite number" in capsys.readouterr().err
    assert cli.main(["predict", "--run", run, "--preference=0,0"]) == 2
    assert "all zero" in capsys.readouterr().err
