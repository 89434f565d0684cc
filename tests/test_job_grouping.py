"""`jobs: per_method` (one job trains and evaluates all runs of a method) against `per_run`.

The grouping is a scheduling choice only: both must produce the same bytes, and a grouped job
that fails part-way must neither lose the previous results nor retrain the runs it finished.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, project_files, tiny_params
from mtlpareto import pipeline
from mtlpareto.config import load_profile

pytestmark = pytest.mark.slow

METHODS = {"uniform": {}, "mgda": {"normalization": "loss+"}}


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _main(root: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "paper_figures", "--cores", "2", *extra]
    return subprocess.run(cmd, cwd=root, env=_env(), capture_output=True, text=True, timeout=600)


def _project(root: Path, jobs: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(methods=METHODS, seeds=(0, 1), epochs=2, jobs=jobs)))
    project_files(root)
    res = _main(root)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return root


def _results(root: Path) -> dict[str, bytes]:
    """Checkpoints, metrics and tables (figures are images of these) with their bytes."""
    prof = load_profile(root / "params.yaml")
    return {p: (root / p).read_bytes() for p in pipeline.declared_outputs(prof) if not p.endswith((".png", ".pdf"))}


@pytest.fixture(scope="module")
def grouped(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    root = _project(tmp_path_factory.mktemp("per_method"), "per_method")
    return root, _results(root)


def test_grouped_jobs_give_the_same_bytes_as_one_job_per_run(grouped, tmp_path):
    root, results = grouped
    log = (root / ".snakemake/log").iterdir()
    text = "\n".join(p.read_text() for p in log)
    assert "rule train_evaluate_multimnist_uniform" in text and "rule train:" not in text
    per_run = _results(_project(tmp_path / "per_run", "per_run"))
    assert per_run.keys() == results.keys() and len(results) > 8
    assert [p for p in results if per_run[p] != results[p]] == []


def test_a_grouped_job_failing_part_way_keeps_the_results_and_reuses_finished_runs(grouped, tmp_path):
    built, before = grouped
    root = tmp_path / "project"
    subprocess.run(["cp", "-a", str(built), str(root)], check=True)
    prof = load_profile(root / "params.yaml")
    first, second = pipeline.method_runs(prof, "multimnist")["uniform"]
    bad_resume = root / Path(pipeline.checkpoint_path(prof, second)).with_name("resume.pt")
    bad_resume.write_bytes(b"not a resume file")  # the job's second run fails at its start

    res = _main(root, "--forcerun", "train_evaluate_multimnist_uniform")
    assert res.returncode != 0
    assert "resume file" in res.stderr and str(bad_resume.relative_to(root)) in res.stderr, res.stderr[-3000:]
    assert _results(root) == before  # the failed job's outputs were put back, byte for byte
    kept = root / Path(pipeline.checkpoint_path(prof, first)).with_name("resume.pt")
    assert kept.exists()  # the finished first run's final state, kept for the rerun

    bad_resume.unlink()
    res = _main(root, "--forcerun", "train_evaluate_multimnist_uniform")
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"[{first.id}] resuming after epoch 2" in res.stdout + res.stderr  # no epoch of the first run retrained
    assert _results(root) == before
    assert not kept.exists()  # removed once the whole job succeeded
