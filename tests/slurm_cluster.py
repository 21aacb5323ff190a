"""A one-node SLURM cluster on localhost, started and stopped by the tests.

Debian's SLURM 22.05 daemons run as root in the foreground from one folder: every config,
state, spool, socket, pid and log file lives there, and nothing under /etc or /var is written.
The pieces are the real ones a site runs:

- munged signs every message between SLURM's commands and daemons;
- slurmdbd keeps job accounting in a private MariaDB, because the executor plugin follows
  jobs with `sacct`, which fails on a cluster without accounting storage;
- slurmctld schedules on two partitions, `cpu` (default) and `gpu`;
- slurmd runs the jobs; proctrack/linuxproc and task/none, so no cgroups are needed.

The commands find the config through $SLURM_CONF, but a job's nested `srun` does not: the
plugin's jobstep strips SLURM_* variables from its environment, since on a real cluster the
config sits at /etc/slurm on every node. So slurmd runs in a private mount namespace in which
this folder's etc/ is bind-mounted on /etc/slurm; outside it, /etc/slurm is untouched.

The node declares two GPUs whose device files are placeholders: SLURM schedules and counts
them (`sbatch --gpus=1` waits for a free one) but nothing runs on a GPU. Memory is not a
consumable here (CR_Core) and nothing enforces it, so the node declares enough for the
profile's production requests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "slurmdbd", "munge", "mariadb-server")
COMMANDS = ("slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "munged", "mariadbd", "mariadb-install-db")
MEMORY_MB = 65536


def prepare() -> str | None:
    """Install the Debian packages when a command is missing; return why the cluster cannot run."""
    if os.geteuid() != 0:
        return "the SLURM daemons need root"
    if not all(shutil.which(cmd) for cmd in COMMANDS):
        if not shutil.which("apt-get"):
            return "SLURM is not installed and there is no apt-get to install it"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            # A fresh container has no package lists yet.
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
            subprocess.run(install, env=env, capture_output=True, check=True)
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        return "no mount namespaces here (unshare --mount failed)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Cluster:
    """``with Cluster(folder) as cluster:`` starts the daemons and always stops them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.conf = self.root / "etc" / "slurm.conf"
        self.env = {"SLURM_CONF": str(self.conf)}
        self.node = socket.gethostname().split(".")[0]  # slurmctld must run on SlurmctldHost
        self.cpus = os.cpu_count() or 1
        self._daemons: list[tuple[str, subprocess.Popen]] = []

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def run(self, *cmd: str, check: bool = True) -> str:
        """A SLURM command against this cluster; its stdout ("" when it fails and check is off)."""
        proc = subprocess.run(cmd, env={**os.environ, **self.env}, capture_output=True, text=True, check=check)
        return proc.stdout if proc.returncode == 0 else ""

    def _spawn(self, name: str, *cmd: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "wb")
        # Own session: a Ctrl-C in the terminal reaches pytest, whose teardown stops us.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}, start_new_session=True)
        log.close()
        self._daemons.append((name, proc))

    def _await(self, ready, timeout: float = 60) -> None:
        """Wait until ready() holds; fail at once if the daemon started last has died."""
        name, proc = self._daemons[-1]
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.root / 'log'}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not ready after {timeout} s; see {self.root / 'log'}")
            time.sleep(0.2)

    def start(self) -> None:
        r = self.root
        for sub in ("etc", "log", "state", "spool", "munge", "db", "dev"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        ports = {name: _free_port() for name in ("ctld", "slurmd", "dbd", "db")}

        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        (r / "munge").chmod(0o700)
        sock = r / "munge" / "munge.socket"
        # --force: munged wants a world-accessible socket path, but pytest's folders are private;
        # harmless here, where every client is root.
        self._spawn("munged", "munged", "--foreground", "--force", f"--key-file={key}", f"--socket={sock}",
                    f"--pid-file={r / 'munge' / 'munged.pid'}", f"--log-file={r / 'log' / 'munged.log'}",
                    f"--seed-file={r / 'munge' / 'munged.seed'}")  # fmt: skip
        self._await(sock.exists)

        db = ("--no-defaults", f"--datadir={r / 'db'}", "--user=root", "--innodb-log-file-size=8M")
        subprocess.run(["mariadb-install-db", *db, "--auth-root-authentication-method=normal", "--skip-test-db"],
                       capture_output=True, check=True)  # fmt: skip
        self._spawn("mariadbd", "mariadbd", *db, f"--port={ports['db']}", "--bind-address=127.0.0.1",
                    f"--socket={r / 'db' / 'mysqld.sock'}", f"--pid-file={r / 'mariadbd.pid'}",
                    f"--log-error={r / 'log' / 'mariadbd.log'}")  # fmt: skip
        self._await(lambda: _listening(ports["db"]))

        dbd_conf = r / "etc" / "slurmdbd.conf"  # slurmdbd reads it next to $SLURM_CONF
        dbd_conf.write_text(
            f"DbdHost=localhost\nDbdAddr=127.0.0.1\nDbdPort={ports['dbd']}\nSlurmUser=root\n"
            f"AuthType=auth/munge\nAuthInfo=socket={sock}\n"
            f"PidFile={r / 'slurmdbd.pid'}\nLogFile={r / 'log' / 'slurmdbd.log'}\n"
            "StorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\n"
            f"StoragePort={ports['db']}\nStorageUser=root\nStorageLoc=slurm_acct_db\n"
        )
        dbd_conf.chmod(0o600)  # slurmdbd refuses a config others can read
        self._spawn("slurmdbd", "slurmdbd", "-D")
        self._await(lambda: _listening(ports["dbd"]))

        gpus = [r / "dev" / f"gpu{i}" for i in range(2)]
        for gpu in gpus:
            gpu.touch()
        (r / "etc" / "gres.conf").write_text("".join(f"NodeName={self.node} Name=gpu File={gpu}\n" for gpu in gpus))
        self.conf.write_text(
            f"ClusterName=mmtest\nSlurmctldHost={self.node}(127.0.0.1)\n"
            f"SlurmctldPort={ports['ctld']}\nSlurmdPort={ports['slurmd']}\n"
            f"SlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={sock}\n"
            f"StateSaveLocation={r / 'state'}\nSlurmdSpoolDir={r / 'spool'}\n"
            f"SlurmctldPidFile={r / 'slurmctld.pid'}\nSlurmdPidFile={r / 'slurmd.pid'}\n"
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}\nSlurmdLogFile={r / 'log' / 'slurmd.log'}\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n"
            "MpiDefault=none\nMailProg=/bin/true\nReturnToService=2\n"
            "SchedulerType=sched/builtin\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
            # The plugin's sacct queries need slurmdbd; the dbd connection ignores AuthInfo and
            # takes its munge socket from AccountingStoragePass.
            f"AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=127.0.0.1\n"
            f"AccountingStoragePort={ports['dbd']}\nAccountingStoragePass={sock}\n"
            # Record GPUs and the plugin's job comment (rule and wildcards) for sacct.
            "AccountingStorageTRES=gres/gpu\nAccountingStoreFlags=job_comment\n"
            # Trust the node lines below over the hardware (declared memory, placeholder GPUs).
            "GresTypes=gpu\nSlurmdParameters=config_overrides\n"
            # Twice the machine's CPUs: room for two jobs of --max-threads each, one per GPU.
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={2 * self.cpus} RealMemory={MEMORY_MB} Gres=gpu:{len(gpus)} State=UNKNOWN\n"
            f"PartitionName=cpu Nodes={self.node} Default=YES MaxTime=INFINITE State=UP\n"
            f"PartitionName=gpu Nodes={self.node} MaxTime=INFINITE State=UP\n"
        )
        self._spawn("slurmctld", "slurmctld", "-D", "-f", str(self.conf))
        self._await(lambda: "UP" in self.run("scontrol", "ping", check=False))
        mount_etc = 'mount --no-mtab --bind "$0" /etc/slurm && exec "$@"'
        self._spawn("slurmd", "unshare", "--mount", "--propagation", "private", "sh", "-c", mount_etc, str(r / "etc"),
                    "slurmd", "-D", "-f", str(self.conf), "-N", self.node)  # fmt: skip
        self._await(lambda: "idle" in self.run("sinfo", "-h", "-o", "%T", check=False))

    def stop(self) -> None:
        """Cancel leftover jobs, then stop every daemon, newest first; kill what will not stop."""
        if any(name == "slurmd" for name, _ in self._daemons):
            self.run("scancel", "--full", f"--user={os.getuid()}", check=False)
            deadline = time.monotonic() + 30
            while self.run("squeue", "-h", "-o", "%i", check=False).strip() and time.monotonic() < deadline:
                time.sleep(0.5)
        while self._daemons:
            _, proc = self._daemons.pop()
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def jobs(self) -> list[dict[str, str]]:
        """Every job sacct knows, one dict of its fields each."""
        fields = ("JobID", "JobName", "Partition", "AllocTRES", "State", "Comment", "Submit", "Start", "End")
        out = self.run("sacct", "-X", "-a", "-n", "-P", "-o", ",".join(fields), "-S", "now-1day")
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]
