"""DVC round trip: run a tiny profile, push checkpoints to a remote, clone, pull, regenerate
the tables without training, byte for byte; the README's DVC commands, as written, on the way."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, project_files, tiny_params


def _run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def _snakemake(cwd: Path, env: dict, *args: str) -> str:
    res = _run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2", *args], cwd, env)
    return res.stdout + res.stderr


@pytest.mark.slow
def test_push_clone_pull_regenerates_tables_without_training(tmp_path, cli_env):
    dvc = str(Path(sys.executable).parent / "dvc")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    origin, clone, remote = tmp_path / "origin", tmp_path / "clone", tmp_path / "remote"
    origin.mkdir()
    params = tiny_params(methods={"uniform": {}, "mgda_ub": {}})
    (origin / "params.yaml").write_text(yaml.safe_dump(params))
    project_files(origin)
    # dvc.yaml stages depend on the package code, so the repository carries it, as a real clone does
    shutil.copytree(REPO / "src", origin / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _run(git + ["init", "-q"], origin, cli_env)
    _run([dvc, "init", "-q"], origin, cli_env)
    _run([dvc, "config", "core.analytics", "false"], origin, cli_env)
    _run([dvc, "remote", "add", "-d", "local", str(remote)], origin, cli_env)
    _run(["mtlpareto", "dvc-yaml"], origin, cli_env)

    assert (origin / "results/tiny/dvc.yaml").exists()

    _snakemake(origin, cli_env, "paper_figures")
    assert "changed outs" in _run([dvc, "status"], origin, cli_env).stdout  # before `dvc commit`, as the README says
    _run([dvc, "commit", "-f", "-q"], origin, cli_env)
    assert "Data and pipelines are up to date." in _run([dvc, "status"], origin, cli_env).stdout
    _run([dvc, "push", "-q"], origin, cli_env)
    _run(git + ["add", "-A"], origin, cli_env)
    _run(git + ["commit", "-qm", "tiny results"], origin, cli_env)

    _run(["git", "clone", "-q", str(origin), str(clone)], tmp_path, cli_env)
    checkpoints = sorted(p.relative_to(origin) for p in (origin / "results/tiny/checkpoints").rglob("model.pt"))
    assert checkpoints and not (clone / checkpoints[0]).exists()
    # A fresh clone: the dry run compares with dvc.lock instead of failing on the missing manifest.
    dry = _run([dvc, "repro", "--dry", "--allow-missing", "results/tiny/dvc.yaml"], clone, cli_env)
    assert "Data and pipelines are up to date." in dry.stdout, dry.stdout
    _run([dvc, "pull", "-q"], clone, cli_env)
    assert "Data and pipelines are up to date." in _run([dvc, "status"], clone, cli_env).stdout
    assert all((clone / c).read_bytes() == (origin / c).read_bytes() for c in checkpoints)

    # The pull gives every file a new timestamp in arbitrary order; DVC has verified the contents
    # against dvc.lock, so `--touch` re-orders the times and nothing is retrained or re-evaluated.
    _snakemake(clone, cli_env, "paper_figures", "--touch")
    assert all((clone / c).read_bytes() == (origin / c).read_bytes() for c in checkpoints)
    plan = _snakemake(clone, cli_env, "-n", "paper_figures")
    assert "Nothing to be done" in plan, plan

    tables = sorted(p.relative_to(origin) for p in (origin / "results/tiny/tables").iterdir())
    for table in tables:
        (clone / table).unlink()
    log = _snakemake(clone, cli_env, "paper_figures")
    assert "rule train" not in log and "rule evaluate" not in log
    assert "rule table" in log
    for table in tables:
        assert (clone / table).read_bytes() == (origin / table).read_bytes(), table
    assert "Data and pipelines are up to date." in _run([dvc, "status"], clone, cli_env).stdout

    # No remote on this machine: DVC's words (the README quotes them), and nothing lost.
    other = tmp_path / "clone2"
    _run(["git", "clone", "-q", str(origin), str(other)], tmp_path, cli_env)
    _run([dvc, "remote", "modify", "--local", "local", "url", str(tmp_path / "nowhere")], other, cli_env)
    res = subprocess.run([dvc, "pull"], cwd=other, env=cli_env, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    assert "Some of the cache files do not exist neither locally nor on remote" in res.stdout + res.stderr
    assert "failed to pull data from the cloud" in res.stdout + res.stderr
