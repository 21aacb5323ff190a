"""The SLURM profile: a dry run anywhere, and a real run on a one-node SLURM cluster.

The cluster test (marked ``slurm``) installs Debian's SLURM when it is missing (root and apt
needed, else it is skipped), starts the daemons in its temporary folder (tests/slurm_cluster.py),
submits part of the micro workflow (``SLURM_TARGETS``) with ``--profile profiles/slurm``, its train
split captioned and extracted in three shards, and checks that every job went through SLURM, GPU
rules to the ``gpu`` partition with one GPU each, that the shards ran side by side, and that the
results equal those of the local run (one shard) byte for byte.
"""

from __future__ import annotations

import re
import signal
from datetime import datetime
from pathlib import Path

import pytest
import slurm_cluster
from conftest import REPO, REPORT, job_table, snakemake

PROFILE = REPO / "profiles" / "slurm"
# As docs/slurm.md says: skip profiles/default, whose local `gpu: 1` limit would hold the
# cluster to one GPU job at a time.
SLURM_ARGS = ("--profile", str(PROFILE), "--workflow-profile", "none")
# One concept report and one steering report: every GPU rule and most CPU rules, in half the
# time of the whole micro run (the shift and the second model add only more of the same rules).
SLURM_TARGETS = (REPORT, "results/steering/shapes-to-red/report.html")
GPU_RULES = {"captions", "lens", "extract", "steering_sets", "steering_vector", "steer_baseline", "steer", "mutual"}


def running_at_once(jobs: list[dict[str, str]]) -> int:
    """The most of these jobs that ran at the same time (sacct's Start and End)."""
    events = sorted(
        (datetime.fromisoformat(job[key]), step)
        for job in jobs
        for key, step in (("Start", 1), ("End", -1))
    )  # at a tie an end sorts first: jobs that only touch did not overlap
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def job_resources(log: str) -> list[tuple[str, str]]:
    """(rule, resources line) of every job a Snakemake log announces."""
    return re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", log, flags=re.M)


def result_files(root: Path) -> dict[str, bytes]:
    """Every caption, selection, grounding, metrics and report file. (Logs hold times and
    paths; .npz archives stamp their members with the time they were written.)"""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted((root / "results").rglob("*"))
        if p.is_file() and p.suffix in (".json", ".jsonl", ".html")
    }


def test_profile_dry_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCONCEPTS_GPU_PARTITION", "gpu-test")
    proc = snakemake(tmp_path, "-n", *SLURM_ARGS)
    jobs = job_resources(proc.stdout + proc.stderr)
    assert {rule for rule, _ in jobs} >= {"captions", "extract", "report"}
    for rule, resources in jobs:
        gpu = rule in GPU_RULES
        assert ("gpu=1" in resources) == gpu, (rule, resources)
        assert ("slurm_partition=gpu-test" in resources) == gpu, (rule, resources)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@pytest.fixture
def slurm(tmp_path, monkeypatch):
    """A running one-node SLURM cluster; SLURM_CONF points the commands at it."""
    reason = slurm_cluster.prepare()
    if reason:
        pytest.skip(reason)
    # A SIGTERM (a CI timeout) would end pytest without teardown, leaving the daemons running.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with slurm_cluster.Cluster(tmp_path / "slurm") as cluster:
            for key, value in cluster.env.items():
                monkeypatch.setenv(key, value)
            yield cluster
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.slurm
def test_workflow_on_slurm(micro_run, fresh_results, slurm, monkeypatch):
    monkeypatch.setenv("MMCONCEPTS_GPU_PARTITION", "gpu")
    proc = snakemake(
        fresh_results,
        *SLURM_TARGETS,
        *SLURM_ARGS,
        # Only adaptations to this small cluster: its CPU count, and polling job states
        # every few seconds instead of the plugin's 40 s, which suits a real cluster.
        "--max-threads", str(slurm.cpus),
        "--slurm-init-seconds-before-status-checks", "2",
        # The micro train split (600 images) in three shards of whole 64-image batches.
        "--config", "scale={shard_size: 200}",
    )  # fmt: skip
    assert (fresh_results / REPORT).is_file()

    jobs = [job for job in slurm.jobs() if job["Comment"].startswith("rule_")]
    ran = [re.match(r"rule_(\w+?)(_wildcards_|$)", job["Comment"]).group(1) for job in jobs]
    expected = job_table(proc.stdout + proc.stderr)
    expected.pop("all", None)  # a target-only rule (when it is the target): Snakemake finishes it without a job
    assert {rule: ran.count(rule) for rule in set(ran)} == expected
    for rule, job in zip(ran, jobs):
        assert job["State"] == "COMPLETED", job
        assert job["JobName"].startswith("mmconcepts_"), job  # the profile's slurm-jobname-prefix
        on_gpu = rule in GPU_RULES
        assert job["Partition"] == ("gpu" if on_gpu else "cpu"), job
        assert ("gres/gpu=1" in job["AllocTRES"]) == on_gpu, job
    shards = [job for rule, job in zip(ran, jobs) if rule in ("captions", "extract") and "train" in job["Comment"]]
    assert len(shards) == 6
    # The cluster ran GPU jobs two at a time, one per GPU, and each split's shards were queued together.
    assert running_at_once([job for rule, job in zip(ran, jobs) if rule in GPU_RULES]) == 2
    for rule in ("captions", "extract"):
        of_rule = [job for job in shards if job["Comment"].startswith(f"rule_{rule}_")]
        assert max(job["Submit"] for job in of_rule) < min(job["End"] for job in of_rule), of_rule

    local = result_files(micro_run)
    on_slurm = result_files(fresh_results)
    assert set(on_slurm) <= set(local), set(on_slurm) - set(local)
    assert on_slurm == {name: local[name] for name in on_slurm}
