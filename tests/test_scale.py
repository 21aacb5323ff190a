"""COCO scale on the micro run: shards change no result, a killed captioning job resumes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import zarr
from conftest import job_table, snakemake

from mmconcepts.concepts.captioning import read_captions

TOKEN_DIR = Path("results/shapes-llava/circle")
CAPTIONS = Path("results/shapes-llava/captions")


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".snakemake_timestamp"}


def test_three_shards_give_byte_identical_captions_and_features(micro_run, run_copy):
    """The train split of 600 images in shards of about 200 (whole 64-image batches): three
    captioning jobs and three extraction jobs, whose gathered outputs equal the one-shard run's."""
    targets = [str(TOKEN_DIR / "features/train")]
    proc = snakemake(run_copy, "--config", "scale={shard_size: 200}", "--", *targets)
    jobs = job_table(proc.stdout + proc.stderr)
    assert jobs["captions"] == 3 and jobs["extract"] == 3
    assert jobs["gather_captions"] == 1 and jobs["gather_features"] == 1
    logs = run_copy / "results/shapes-llava/logs"
    rows = [json.loads((logs / f"captions_train_{i}-of-3.log").read_text().splitlines()[-1])["rows"] for i in (1, 2, 3)]
    assert rows == [[0, 192], [192, 384], [384, 600]]
    assert (run_copy / CAPTIONS / "train.jsonl").read_bytes() == (micro_run / CAPTIONS / "train.jsonl").read_bytes()
    assert (run_copy / TOKEN_DIR / "samples/train.json").read_bytes() == (micro_run / TOKEN_DIR / "samples/train.json").read_bytes()
    sharded, whole = tree_bytes(run_copy / TOKEN_DIR / "features/train"), tree_bytes(micro_run / TOKEN_DIR / "features/train")
    assert sorted(sharded) == sorted(whole) and sharded == whole
    # The shard outputs are temporary: only the gathered ones stay.
    assert [*(run_copy / CAPTIONS).glob("train/*"), *(run_copy / TOKEN_DIR).glob("feature_shards/train/*")] == []


def captions_command(micro_run: Path, out: Path) -> list[str]:
    world = micro_run / "resources/worlds/shapes"
    return [
        sys.executable, "-m", "mmconcepts", "captions", "--adapter", "llava",
        "--model", str(micro_run / "resources/models/shapes-llava"),
        "--gt", str(world / "captions.json"), "--images", str(world), "--split", "test", "--limit", "60",
        "--instruction", "Provide a one-sentence caption for the provided image.",
        "--batch-size", "2", "--max-new-tokens", "24", "--threads", "1", "--out", str(out),
    ]  # fmt: skip


def test_a_killed_captioning_job_resumes_after_its_last_whole_batch(micro_run, tmp_path):
    out = tmp_path / "killed.jsonl"
    partial = tmp_path / "killed.jsonl.partial"
    proc = subprocess.Popen(captions_command(micro_run, out), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 120
    while not (partial.is_file() and partial.read_text().count("\n") >= 6):  # three batches of 2 written
        assert proc.poll() is None, "finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # as a node failure or a time limit would: no cleanup at all
    proc.wait(timeout=30)
    assert not out.exists()
    written = partial.read_text().count("\n")
    assert 6 <= written < 60

    restarted = subprocess.run(captions_command(micro_run, out), capture_output=True, text=True, check=True)
    counts = json.loads(restarted.stdout.splitlines()[-1])
    # It took over the whole batches written before the kill and captioned only the rest.
    assert counts["resumed"] == written - written % 2 and counts["resumed"] >= 6
    assert counts["captioned"] + counts["skipped"] == 60 - counts["resumed"]
    assert not partial.exists() and not (tmp_path / "killed.jsonl.partial.json").exists()

    uninterrupted = tmp_path / "whole.jsonl"
    subprocess.run(captions_command(micro_run, uninterrupted), capture_output=True, check=True)
    assert out.read_bytes() == uninterrupted.read_bytes()
    assert [r["id"] for r in read_captions(out)] == [r["id"] for r in read_captions(micro_run / CAPTIONS / "test.jsonl")][:60]


def test_an_extraction_shard_without_rows_never_loads_the_model(micro_run, tmp_path):
    """One batch of 1,000 rows split in two: the first shard is empty. Its model path does not
    exist, so loading it would fail."""
    samples = micro_run / TOKEN_DIR / "samples/train.json"
    cmd = [
        sys.executable, "-m", "mmconcepts", "extract", "--adapter", "llava", "--model", str(tmp_path / "no-model"),
        "--samples", str(samples), "--instruction", "x", "--batch-size", "1000", "--shard", "1-of-2",
        "--layers", "2", "--out", str(tmp_path / "layer2.zarr"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    n = len(json.loads(samples.read_text())["samples"])
    assert json.loads(proc.stdout.splitlines()[-1]) == {"rows": [0, 0], "of": n}
    store = zarr.open_group(tmp_path / "layer2.zarr", mode="r")
    assert store["features"].shape == (0, 0) and store.attrs["rows"] == [0, 0] and store.attrs["sample_ids"] == []
