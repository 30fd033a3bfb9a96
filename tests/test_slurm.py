"""The workflow on a real SLURM cluster: this machine made a one-node cluster (Debian's slurm-wlm and munge,
as root), the data stages of the tiny demo run through `snakemake --profile profiles/slurm` (one sbatch job
per shard and stage), then locally through `--profile profiles/local`, and every output compared byte for
byte.

Where the machine cannot be made a cluster (not root, no apt-get, a SLURM configuration that this test did not
write) the test says so in a banner, a warning and its skip reason; under CI (CI set) it fails instead. A
failure to install or start the daemons on a machine that should manage is a failure. Deselect it with
`pytest -m "not slurm"`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest
import yaml

from .test_workflow import TINY

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# srun inside a job reads this path: the jobstep plugin drops SLURM_CONF from the job's environment
SLURM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by motionprep tests/test_slurm.py"
NEEDED = ("slurmctld", "slurmd", "sbatch", "srun", "squeue", "sinfo", "scancel", "munged", "munge", "unmunge")
STAGES = ("decode", "extract_flow", "reencode", "extract_mv", "resframe")  # the data stages: a job a shard


def _unavailable(config, reason: str):
    """Say loudly that SLURM did not run here: a banner on the terminal (past pytest's capture), a warning in
    the summary, and a skip whose reason `-ra` lists (a failure under CI)."""
    msg = f"the SLURM test did NOT run on SLURM: {reason}"
    bar = "!" * 100
    with config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print(f"\n{bar}\n!! {msg}\n{bar}", file=sys.stderr, flush=True)
    warnings.warn(msg)
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def _run(cmd, timeout=60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def _install(config):
    """slurm-wlm and munge from Debian, when one of their commands is missing (about 10 s)."""
    if all(shutil.which(c) for c in NEEDED):
        return
    if os.geteuid() != 0:
        _unavailable(config, "SLURM is not installed and this is not root, so it cannot be installed")
    if not shutil.which("apt-get"):
        _unavailable(config, "SLURM is not installed and there is no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300",
           "slurm-wlm", "munge"]
    run = _run(cmd, timeout=900, env=env)
    if run.returncode != 0:  # no or old package lists: update them once and try again
        _run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=300"], timeout=900, env=env)
        run = _run(cmd, timeout=900, env=env)
    missing = [c for c in NEEDED if not shutil.which(c)]
    if run.returncode != 0 or missing:
        pytest.fail(f"apt-get install slurm-wlm munge failed (rc {run.returncode}, missing {missing}):\n"
                    f"{run.stdout[-2000:]}\n{run.stderr[-2000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else f"({path} is missing)"


class Cluster:
    """One node (this host, its real CPUs and memory), one default partition, no accounting; every daemon it
    starts is a child process of this test, remembered by its pid and stopped by it."""

    def __init__(self, root: Path):
        self.root = root
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []
        self.wrote_conf = False
        self.node = _run(["hostname", "-s"]).stdout.strip() or socket.gethostname().split(".")[0]
        spec = _run(["slurmd", "-C"])  # this machine as slurmd sees it: NodeName=.. CPUs=2 .. RealMemory=..
        if spec.returncode != 0 or not spec.stdout.startswith("NodeName="):
            pytest.fail(f"slurmd -C failed (rc {spec.returncode}): {spec.stdout[-999:]}{spec.stderr[-999:]}")
        fields = dict(f.split("=", 1) for f in spec.stdout.splitlines()[0].split())
        self.cpus, self.mem_mb = int(fields["CPUs"]), int(fields["RealMemory"])
        fields.update(NodeName=self.node, NodeAddr="127.0.0.1", State="UNKNOWN")
        self.node_line = " ".join(f"{k}={v}" for k, v in fields.items())

    def start(self):
        munge = self.root / "munge"
        munge.mkdir(mode=0o755)
        shutil.chown(munge, "munge", "munge")
        key = Path("/etc/munge/munge.key")
        if not key.exists():  # the munge package makes one; if it is gone, one for this cluster only
            key = munge / "munge.key"
            key.write_bytes(os.urandom(128))
            key.chmod(0o600)
            shutil.chown(key, "munge", "munge")
        sock = munge / "munge.socket"
        self._spawn("munged", ["munged", "--foreground", f"--socket={sock}", f"--key-file={key}",
                               f"--pid-file={munge / 'munged.pid'}", f"--seed-file={munge / 'munged.seed'}",
                               f"--log-file={munge / 'munged.log'}"],
                    user="munge", group="munge", extra_groups=[])
        self._wait("munged answers", lambda: _run(f"munge -n -S {sock} | unmunge -S {sock}", shell=True)
                   .returncode == 0)
        for d in ("state", "spool"):
            (self.root / d).mkdir()
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SLURM_CONF.write_text("\n".join([
            MARKER + f" for a one-node cluster in {self.root}; removed when the test ends",
            "ClusterName=motionprep",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",             # the test runs as root, and so do the jobs
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={sock}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'slurmd.pid'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU_Memory",
            "SchedulerType=sched/backfill",
            "MpiDefault=none",
            "MailProg=/bin/true",
            "ReturnToService=2",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MinJobAge=600",              # squeue shows a finished job this long: the plugin's status query
            self.node_line,
            f"PartitionName=main Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
        ]) + "\n")
        self.wrote_conf = True
        self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(SLURM_CONF)])
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(SLURM_CONF)])

        def idle():
            state = _run(["sinfo", "-h", "-N", "-n", self.node, "-o", "%t"]).stdout.strip()
            return state == "idle"
        self._wait(f"sinfo shows node {self.node} idle", idle)

    def _spawn(self, name, cmd, **kw):
        log = self.root / f"{name}.log"
        with open(log, "w") as out:
            p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
        self.procs.append((name, p, log))

    def _wait(self, what, ok, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for name, p, log in self.procs:
                if p.poll() is not None:
                    pytest.fail(f"{name} (pid {p.pid}) exited with {p.returncode} while waiting until "
                                f"{what}:\n{_tail(log)}")
            if ok():
                return
            time.sleep(0.5)
        logs = "\n".join(f"--- {name}:\n{_tail(log)}" for name, _, log in self.procs)
        pytest.fail(f"timed out after {timeout} s waiting until {what}\n{logs}")

    def stop(self):
        if any(name == "slurmctld" and p.poll() is None for name, p, _ in self.procs):
            # jobs left by a failed run: cancelled while the controller is up
            left = _run(["squeue", "-h", "-o", "%i"]).stdout.split()
            if left:
                _run(["scancel", *left])
                time.sleep(2)
        for name, p, _ in reversed(self.procs):  # exactly the daemons this test started, by their pids
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        self.procs.clear()
        if self.wrote_conf and SLURM_CONF.exists() and SLURM_CONF.read_text().startswith(MARKER):
            SLURM_CONF.unlink()


@pytest.fixture
def slurm_cluster(pytestconfig):
    _install(pytestconfig)
    if os.geteuid() != 0:
        _unavailable(pytestconfig, "not root: slurmd must run as root to start jobs, and "
                     f"{SLURM_CONF} is written")
    if SLURM_CONF.exists() and not SLURM_CONF.read_text().startswith(MARKER):
        _unavailable(pytestconfig, f"{SLURM_CONF} exists and this test did not write it: a real cluster's "
                     "configuration is never overwritten")
    root = Path(tempfile.mkdtemp(prefix="motionprep-slurm-", dir="/tmp"))
    root.chmod(0o755)  # munged (user munge) must reach its socket
    cluster = Cluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _tiny_shards() -> list[str]:
    cfg = yaml.safe_load(TINY)
    demo = cfg["make_demo"]
    videos = demo["classes"] * (demo["train_per_class"] + demo["test_per_class"])
    per_shard = cfg["datasets"]["demo"]["videos_per_shard"]
    return [f"{k:05d}" for k in range(-(-videos // per_shard))]


def _targets(shards) -> list[str]:
    from pipeline.core import paths
    from pipeline.steps import get
    return [f"results/{stage}/demo/{paths.OUTPUT_PATTERNS[kind].format(shard=k)}"
            for stage in STAGES for k in shards for kind in get(stage).writes]


def _snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    workdir.mkdir()
    (workdir / "config.yaml").write_text(TINY)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # sbatch exports it to the jobs
    try:
        return _run([str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml",
                     *args], timeout=timeout, cwd=workdir, env=env)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"snakemake {' '.join(args[:4])} ran past {timeout} s:\n{out[-4000:]}")


def _results(workdir: Path) -> dict[str, Path]:
    """Every file the run wrote under results/, by its path relative to the run's folder."""
    return {str(p.relative_to(workdir)): p for p in sorted((workdir / "results").rglob("*")) if p.is_file()}


def test_the_data_stages_on_slurm_give_the_bytes_of_a_local_run(slurm_cluster, tmp_path):
    shards = _tiny_shards()
    targets = _targets(shards)
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    over = []
    sizes = profile["set-resources"]
    if any(sizes[rule]["mem_mb"] > slurm_cluster.mem_mb for rule in ("make_demo", "manifest", *STAGES)):
        # a smaller machine than the profile's sizes: the same list, memory capped at the node's
        over = ["--set-resources"] + [f"{rule}:{k}={min(v, slurm_cluster.mem_mb) if k == 'mem_mb' else v}"
                                      for rule, res in sizes.items() for k, v in res.items()]
    t0 = time.monotonic()
    run = _snakemake(tmp_path / "slurm", "--profile", str(REPO / "profiles" / "slurm"), *over, "--jobs", "4",
                     "--max-threads", str(slurm_cluster.cpus),  # extract_flow's 8 threads on a smaller node
                     "--slurm-status-command", "squeue",       # no accounting: sacct would never see the jobs
                     "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "2",
                     *targets)
    slurm_s = time.monotonic() - t0
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-5000:]
    # every rule instance was one sbatch job: make_demo, manifest, and one job per shard of each data stage
    ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert len(ids) == len(set(ids)) == 2 + len(STAGES) * len(shards), log[-5000:]
    queue = _run(["squeue", "--states=all", "-h", "-o", "%i|%T|%k", "-j", ",".join(ids)]).stdout.split()
    jobs = dict(line.split("|", 1) for line in queue)
    assert sorted(jobs) == sorted(ids), queue
    assert all(state.startswith("COMPLETED|") for state in jobs.values()), queue
    comments = sorted(state.split("|", 1)[1] for state in jobs.values())
    assert comments == sorted(["rule_make_demo", "rule_manifest_wildcards_demo"]
                              + [f"rule_{s}_wildcards_demo_{k}" for s in STAGES for k in shards]), comments

    t0 = time.monotonic()
    local = _snakemake(tmp_path / "local", "--profile", str(REPO / "profiles" / "local"), "--cores", "2",
                       *targets)
    local_s = time.monotonic() - t0
    assert local.returncode == 0, (local.stdout + local.stderr)[-5000:]

    # the same bytes: every shard, failure report, index, done-marker, re-encoded and demo video
    on_slurm, here = _results(tmp_path / "slurm"), _results(tmp_path / "local")
    assert sorted(on_slurm) == sorted(here)
    assert [t for t in targets if not (tmp_path / "slurm" / t).exists()] == []
    differ = [name for name, path in on_slurm.items() if path.read_bytes() != here[name].read_bytes()]
    why = [_run([str(BIN / "prep-cli"), "shards", "diff", str(on_slurm[n]), str(here[n])]).stdout[-1500:]
           for n in differ if n.endswith(".h5")]
    assert differ == [], f"outputs differ between the SLURM and the local run: {differ}\n" + "\n".join(why)
    print(f"SLURM: {len(ids)} jobs, {slurm_s:.0f} s; local: {local_s:.0f} s; {len(on_slurm)} files equal")
