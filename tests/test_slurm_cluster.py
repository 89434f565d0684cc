"""The cluster path for real: a one-node SLURM cluster on this machine (Debian's slurm-wlm and
munge, started by hand), the tiny profile run through Snakemake's SLURM executor with the
repository's profiles/slurm, every job submitted with sbatch, and the results byte-identical to
a local run of the same profile."""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, project_files, tiny_params

def test_job_resources_come_from_params_with_experiment_overrides(repo_params, tmp_path):
    from mtlpareto import pipeline
    from mtlpareto.config import load_profile
    from mtlpareto.errors import ConfigError

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(repo_params))
    paper = load_profile(params, "paper")
    raw = repo_params["profiles"]["paper"]
    train = raw["resources"]["train"]
    celeba = raw["experiments"]["celeba"]["resources"]["train"]
    gpu = {"gpu": 1, "cpus_per_gpu": raw["torch_threads"]}
    assert pipeline.job_resources(paper, "train", "multimnist") == {**train, **gpu}
    assert pipeline.job_resources(paper, "train", "celeba") == {**train, **celeba, **gpu}
    assert pipeline.job_resources(paper, "evaluate", "celeba") == {**raw["resources"]["evaluate"], **gpu}
    assert pipeline.job_resources(paper, "other") == raw["resources"]["other"]  # no GPU for tables and figures
    # a per_method job trains its runs in turn: their runtimes add up, nothing else does
    assert pipeline.job_resources(paper, "train", "multimnist", runs=3) == {**train, "runtime": 3 * train["runtime"], **gpu}
    quick = load_profile(params, "quick")
    assert pipeline.job_resources(quick, "train", "multimnist") == {**repo_params["profiles"]["quick"]["resources"]["train"], "gpu": 0}
    with pytest.raises(ValueError, match="unknown job kind 'fit'"):
        pipeline.job_resources(quick, "fit")
    # an experiment's own entry for its table, figure and curves jobs; fetch and build_data keep the profile's
    other = repo_params["profiles"]["quick"]["resources"]["other"]
    repo_params["profiles"]["quick"]["experiments"]["scenes"]["resources"] = {"other": {"mem_mb": 5000}}
    params.write_text(yaml.safe_dump(repo_params))
    quick = load_profile(params, "quick")
    assert pipeline.job_resources(quick, "other", "scenes") == {**other, "mem_mb": 5000}
    assert pipeline.job_resources(quick, "other", "multimnist") == pipeline.job_resources(quick, "other") == other
    repo_params["profiles"]["quick"]["resources"]["train"]["runtim"] = 5
    params.write_text(yaml.safe_dump(repo_params))
    with pytest.raises(ConfigError, match="runtim"):
        load_profile(params, "quick")


DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol")


def _program(name: str) -> str:
    """A SLURM or munge program: on PATH, or in /usr/sbin (Debian's daemons, not on a user's PATH)."""
    return shutil.which(name) or f"/usr/sbin/{name}"


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def slurm_conf(root: Path, ports: list[int], cpus: int, memory_mb: int) -> str:
    """A one-node cluster: no cgroups, no accounting database, state and logs under `root`."""
    return f"""\
ClusterName=mtlpareto-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge-run/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# Finished jobs stay visible to squeue for 10 minutes: without accounting, the executor's status
# query is `squeue --states=all`.
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    def __init__(self, root: Path, env: dict) -> None:
        self.root, self.env = root, env
        self.daemons: list[subprocess.Popen] = []

    def client_env(self, base: dict) -> dict:
        """`base` with this cluster's slurm.conf and srun."""
        return dict(base, SLURM_CONF=self.env["SLURM_CONF"], PATH=f"{self.root / 'bin'}{os.pathsep}{base.get('PATH', '')}")

    def log(self, name: str) -> str:
        path = self.root / "log" / name
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, args: list[str], name: str) -> None:
        out = open(self.root / "log" / f"{name}.out", "w")
        self.daemons.append(subprocess.Popen(args, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))

    def stop(self) -> None:
        # Only the daemons this test started, by their process ids, newest first.
        for proc in reversed(self.daemons):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=15)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    missing = [tool for tool in DAEMONS + CLIENTS if not Path(_program(tool)).exists()]
    if missing:
        pytest.skip(f"SLURM cannot start here: {', '.join(missing)} not installed (Debian: apt-get install -y slurm-wlm munge)")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install -c constraints.txt -e '.[slurm]')")
    if os.geteuid() != 0:
        pytest.skip("SLURM cannot start here: slurmd of a one-node test cluster runs as root, and this is not root")
    # A short path: unix sockets are limited to 108 bytes.
    root = Path(tmp_path_factory.mktemp("slurm"))
    for sub in ("state", "spool", "log", "munge-key", "munge-run"):
        (root / sub).mkdir()
    (root / "munge-key").chmod(0o700)
    (root / "munge-run").chmod(0o755)
    key = root / "munge-key" / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o600)
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, _free_ports(2), os.cpu_count() or 1, int(_memory_mb() * 0.8)))
    env = dict(os.environ, SLURM_CONF=str(conf))
    # The executor's job step runs `srun` with every SLURM_* variable but the job's identity
    # removed, SLURM_CONF included: srun then looks for /etc/slurm/slurm.conf, where a real
    # cluster keeps it. This cluster's file is elsewhere, so an `srun` first on PATH passes it on.
    (root / "bin").mkdir()
    srun = root / "bin" / "srun"
    srun.write_text(f"#!/bin/sh\nSLURM_CONF={conf} exec {shutil.which('srun') or '/usr/bin/srun'} \"$@\"\n")
    srun.chmod(0o755)
    cluster = Cluster(root, env)
    try:
        cluster.start([_program("munged"), "-F", "-f", f"--socket={root}/munge-run/munge.socket", f"--key-file={key}",
                       f"--log-file={root}/log/munged.log", f"--pid-file={root}/munge-run/munged.pid", f"--seed-file={root}/munge-key/seed"], "munged")
        deadline = time.monotonic() + 20
        while not (root / "munge-run/munge.socket").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        cluster.start([_program("slurmctld"), "-D", "-c", "-f", str(conf)], "slurmctld")
        cluster.start([_program("slurmd"), "-D", "-N", "localhost", "-f", str(conf)], "slurmd")
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            res = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=env, capture_output=True, text=True)
            state = res.stdout.strip()
            if state in ("idle", "mixed", "allocated"):
                break
            if any(p.poll() is not None for p in cluster.daemons):
                break
            time.sleep(0.5)
        else:
            state = f"{state} (timeout)"
        if state not in ("idle", "mixed", "allocated"):
            logs = "\n".join(f"--- {n}\n{cluster.log(n)[-1500:]}" for n in ("munged.out", "slurmctld.out", "slurmctld.log", "slurmd.out", "slurmd.log"))
            pytest.skip(f"SLURM cannot start here: the node is {state or 'not reported'} after 60 s\n{logs}")
        yield cluster
    finally:
        cluster.stop()


def _snakemake(cwd: Path, env: dict, *args: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args]
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout[-4000:]}\n{res.stderr[-6000:]}"
    return res.stdout + res.stderr


def _project(root: Path) -> None:
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(methods={"uniform": {}, "mgda_ub": {}})))
    project_files(root)


def _results(root: Path) -> dict[str, bytes]:
    tree = root / "results/tiny"
    files = sorted([*tree.glob("runs/**/metrics.json"), *tree.glob("tables/*"), *tree.glob("curves/*")])
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


@pytest.mark.slow
def test_tiny_profile_through_the_slurm_executor_matches_a_local_run(slurm_cluster, tmp_path, cli_env):
    env = slurm_cluster.client_env(cli_env)
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    _project(local)
    _project(cluster)
    # A DVC repository, as the real one: the Snakemake submitting the jobs holds DVC's lock, and
    # the Snakemake inside each job (started without hooks) must not try to take it again.
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "init", "--no-scm", "-q"], cwd=cluster, env=env, check=True)
    _snakemake(local, env, "--cores", "2", "paper_figures")

    started = time.monotonic()
    # The repository's profile, as the README runs it; this cluster has no accounting database
    # (sacct fails), hence squeue for job states, and no accounts.
    log = _snakemake(
        cluster, env, "--profile", str(REPO / "profiles/slurm"), "paper_figures",
        "--slurm-status-command", "squeue", "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "1",
    )
    seconds = time.monotonic() - started
    print(f"tiny profile through SLURM: {seconds:.0f} s")

    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log))
    rule_of_job = {job: rule for rule, job in re.findall(r"^rule (\w+):\n(?:    .*\n)*?    jobid: (\d+)$", log, re.M)}
    # Every job but the target (a localrule) went to SLURM: fetch, build_data, 2 x train, 2 x evaluate, table, figure, curves.
    assert set(submitted) == set(rule_of_job), log[-4000:]
    assert sorted(rule_of_job.values()) == sorted(
        ["fetch", "build_data", "train", "train", "evaluate_multimnist_uniform", "evaluate_multimnist_mgda_ub", "table", "figure", "curves"]
    )
    jobs = {}
    for slurm_id in submitted.values():
        info = subprocess.run(["scontrol", "show", "job", slurm_id], env=env, capture_output=True, text=True, check=True).stdout
        jobs[slurm_id] = dict(re.findall(r"(\w+)=(\S*)", info))
    assert {j["JobState"] for j in jobs.values()} == {"COMPLETED"}, jobs
    assert {j["BatchFlag"] for j in jobs.values()} == {"1"}  # batch jobs: submitted with sbatch
    assert {j["WorkDir"] for j in jobs.values()} == {str(cluster)}
    # The resources of params.yaml's quick profile (tiny_params copies it) reached SLURM.
    train_ids = [slurm_id for job, slurm_id in submitted.items() if rule_of_job[job] == "train"]
    assert len(train_ids) == 2, rule_of_job
    assert all(jobs[i]["TimeLimit"] == "00:30:00" for i in train_ids), {i: jobs[i]["TimeLimit"] for i in train_ids}
    assert all(jobs[i]["MinMemoryNode"] == "3000M" for i in train_ids), {i: jobs[i]["MinMemoryNode"] for i in train_ids}
    assert "_slurm_rpc_submit_batch_job" in slurm_cluster.log("slurmctld.log")

    ours, theirs = _results(cluster), _results(local)
    assert len(ours) == 2 + 3 + 1, sorted(ours)  # two metrics files, the table (CSV, Markdown, HTML), the curves
    assert ours == theirs
