"""Shared fixtures: the micro world and its tiny models, built once per test session.

The workflow tests run real Snakemake on tests/configs/micro.yaml. The first
fixture builds the micro world, both tiny models and one complete run in a
temporary folder; tests that change something work on a copy of that folder
(mtimes and Snakemake's metadata included), so nothing is trained twice.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
MICRO = REPO / "tests" / "configs" / "micro.yaml"
REPORT = "results/shapes-llava/circle/report.html"

# Nothing may reach a model hub, here or in the jobs Snakemake starts.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# The tests' own tiny models run fastest on one thread: with two, a test waits whenever a
# Snakemake job or anything else holds the other core (measured 5x slower under load).
torch.set_num_threads(1)
# Rules call `python -m mmconcepts`: make it this interpreter even when the venv is not activated.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    """The command line that runs the repository's workflow on the micro config in ``workdir``."""
    return [
        str(Path(sys.executable).with_name("snakemake")),
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(MICRO),
        "--cores", "2",
        *args,
    ]  # fmt: skip


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 1800) -> subprocess.CompletedProcess:
    proc = subprocess.run(snakemake_command(workdir, *args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def job_table(log: str) -> dict[str, int]:
    """The "Job stats" table Snakemake prints: jobs by rule, without the total."""
    table = log.split("Job stats:", 1)[1].split("total", 1)[0]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


@pytest.fixture(scope="session")
def micro_run(tmp_path_factory) -> Path:
    """A folder holding the micro world, its tiny models and one complete run of the workflow."""
    workdir = tmp_path_factory.mktemp("micro_run")
    snakemake(workdir)
    assert (workdir / REPORT).is_file()
    return workdir


@pytest.fixture
def run_copy(micro_run, tmp_path) -> Path:
    """A private copy of the complete micro run, free to change."""
    dest = tmp_path / "run"
    shutil.copytree(micro_run, dest, symlinks=True)
    return dest


@pytest.fixture
def fresh_results(micro_run, tmp_path) -> Path:
    """The micro world and trained models, with no results yet."""
    dest = tmp_path / "fresh"
    shutil.copytree(micro_run / "resources", dest / "resources", symlinks=True)
    return dest
