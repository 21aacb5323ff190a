"""The workflow as a user runs it: real Snakemake on the micro config (see conftest.py)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPORT, job_table, snakemake, snakemake_command

from mmconcepts.concepts.feature_store import read_features

TOKEN_DIR = Path("results/shapes-llava/circle")
CAPTIONS = "results/shapes-llava/captions"


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """The jobs a dry run would start, by rule (the 'Job stats' table)."""
    out = snakemake(workdir, "--dry-run", "--quiet", "rules", *args).stdout
    if "Nothing to be done" in out:
        return {}
    jobs = job_table(out)
    jobs.pop("all", None)
    return jobs


def failure_text(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, "snakemake should have failed"
    return proc.stdout + proc.stderr


# -- the whole DAG ------------------------------------------------------------------------
def test_full_run_from_empty_results(micro_run):
    samples = json.loads((micro_run / TOKEN_DIR / "samples/train.json").read_text())
    kept = samples["counts"]["kept"]
    assert kept == len(samples["samples"]) >= 4
    for layer in ("2", "final"):
        Z, attrs = read_features(micro_run / TOKEN_DIR / f"features/train/layer{layer}.zarr")
        assert Z.shape == (kept, 128) and Z.dtype == np.float32 and np.isfinite(Z).all()
        assert attrs["sample_ids"] == [s["id"] for s in samples["samples"]]
        assert attrs["positions"] == [s["position"] for s in samples["samples"]]
    # Every configured layer x method x K got its own dictionary, grounding and metrics.
    runs = sorted(p.parent.relative_to(micro_run / TOKEN_DIR) for p in (micro_run / TOKEN_DIR).glob("layer*/*/k*/metrics.json"))
    assert [str(r) for r in runs] == sorted(f"layer{L}/{m}/k4" for L in ("2", "final") for m in ("snmf", "pca", "kmeans", "simple", "random"))
    html = (micro_run / REPORT).read_text()
    assert "circle" in html and html.count('class="concept-card"') == 4
    # The front page links the report, by a relative link that resolves.
    index = (micro_run / "results/index.html").read_text()
    links = re.findall(r'<a class="report" href="([^"]+)"', index)
    assert links == [
        "mutual/shapes-classes/report.html",
        "shapes-llava/circle/report.html",
        "shift/shapes-llava--shapes-llava-places/circle/report.html",
        "steering/shapes-to-red/report.html",
        "steering/shapes-yes-to-no/report.html",
    ]
    assert all((micro_run / "results" / link).is_file() for link in links)
    # No temporary output survived anywhere.
    assert not list((micro_run / "results").rglob("*.tmp-*"))


def test_second_run_has_nothing_to_do(micro_run):
    assert planned_jobs(micro_run) == {}


def test_new_k_reruns_only_the_dictionary_and_after(micro_run):
    jobs = planned_jobs(micro_run, "--config", "decomposition={k: [3]}")
    assert set(jobs) == {"decompose", "ground", "evaluate", "report", "index"}
    assert jobs["decompose"] == 10  # 2 layers x 5 methods


def test_new_layer_reextracts_but_does_not_recaption(micro_run):
    jobs = planned_jobs(micro_run, "--config", "models={shapes-llava: {layers: [1, 2, final]}}")
    assert "captions" not in jobs and "world" not in jobs and "train_lmm" not in jobs
    assert jobs["extract"] == 2 and jobs["decompose"] == 15


def test_new_token_reuses_the_captions(micro_run):
    jobs = planned_jobs(micro_run, "--config", "models={shapes-llava: {tokens: [circle, square]}}")
    assert "captions" not in jobs
    assert jobs["select"] == 2 and jobs["extract"] == 2 and jobs["report"] == 1


def test_rerun_after_k_change_leaves_captions_and_features_alone(run_copy):
    captions = run_copy / CAPTIONS / "train.jsonl"
    store = run_copy / TOKEN_DIR / "features/train/layer2.zarr"
    before = (captions.stat().st_mtime_ns, store.stat().st_mtime_ns)
    snakemake(run_copy, "--config", "decomposition={k: [3], methods: [snmf]}")
    assert (captions.stat().st_mtime_ns, store.stat().st_mtime_ns) == before
    html = (run_copy / REPORT).read_text()
    assert html.count('class="concept-card"') == 3
    assert (run_copy / TOKEN_DIR / "layer2/snmf/k3/dictionary.npz").is_file()


# -- interruption -------------------------------------------------------------------------
def _wait_for(pattern: str, folder: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not list(folder.glob(pattern)):
        assert proc.poll() is None, f"finished before {pattern} appeared"
        assert time.monotonic() < deadline, f"{pattern} never appeared in {folder}"
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupting_snakemake_during_extract_leaves_no_partial_store(micro_run, run_copy, sig):
    """Whether Snakemake lets the running job finish or stops it, a store at its final name
    is a complete one, no temporary is left, and the rerun completes. (The CLI's own
    behaviour when killed midway is the next test's.)"""
    features = run_copy / TOKEN_DIR / "features/train"
    shutil.rmtree(features)
    # Batch size 1 makes extraction slow enough to be interrupted midway; mtime
    # triggers only, so that the changed batch size does not rerun the captions.
    args = ["--rerun-triggers", "mtime", "--config", "models={shapes-llava: {batch_size: 1}}", "--", str(TOKEN_DIR / "features/train")]
    proc = subprocess.Popen(snakemake_command(run_copy, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for("feature_shards/train/1-of-1/.layer*.zarr.tmp-*", run_copy / TOKEN_DIR, proc)
    time.sleep(0.3)
    proc.send_signal(sig)
    proc.communicate(timeout=120)

    reference = {L: read_features(micro_run / TOKEN_DIR / f"features/train/layer{L}.zarr")[0] for L in ("2", "final")}
    assert not list((run_copy / TOKEN_DIR).rglob(".*tmp-*"))
    for store in features.glob("layer*.zarr"):
        Z, _ = read_features(store)
        np.testing.assert_allclose(Z, reference[store.stem.removeprefix("layer")], rtol=1e-4, atol=1e-4)
    if not list(features.glob("layer*.zarr")):
        assert "gather_features" in planned_jobs(run_copy)

    snakemake(run_copy, str(TOKEN_DIR / "features/train"))
    for layer, ref in reference.items():
        np.testing.assert_allclose(read_features(features / f"layer{layer}.zarr")[0], ref, rtol=1e-4, atol=1e-4)


def test_sigterm_to_the_extract_command_removes_its_temporary_stores(micro_run, tmp_path):
    """The CLI itself, without Snakemake's cleanup: nothing at the final names, no temporaries left."""
    out = [tmp_path / "layer2.zarr", tmp_path / "layerfinal.zarr"]
    cmd = [
        sys.executable, "-m", "mmconcepts", "extract", "--adapter", "llava",
        "--model", str(micro_run / "resources/models/shapes-llava"),
        "--samples", str(micro_run / TOKEN_DIR / "samples/train.json"),
        "--instruction", "Provide a one-sentence caption for the provided image.",
        "--batch-size", "1", "--layers", "2", "final", "--out", *map(str, out),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=micro_run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for(".layer*.zarr.tmp-*", tmp_path, proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert list(tmp_path.iterdir()) == []


# -- bad input ----------------------------------------------------------------------------
def test_a_word_no_caption_contains_names_the_word_and_counts(micro_run):
    proc = snakemake(micro_run, "--config", "models={shapes-llava: {tokens: [elephant]}}", check=False)
    text = failure_text(proc)
    assert re.search(r"word 'elephant': no (train|test) samples kept \(images seen \d+, word in prediction 0", text)


def test_k_larger_than_the_kept_samples_names_k(micro_run):
    proc = snakemake(micro_run, "--config", "decomposition={k: [5000]}", check=False)
    assert re.search(r"word 'circle': only \d+ train samples kept .* fewer than K = 5000", failure_text(proc))


@pytest.mark.parametrize(
    "override, named",
    [
        ("decomposition={k: many}", "['decomposition']['k']"),
        ("world={n_train: -5}", "['world']['n_train']"),
        ("models={shapes-llava: {layers: [0]}}", "['layers']"),
        ("selection={position: middle}", "['selection']['position']"),
        ("world={shapes: [circle, hexagon]}", "world: shapes has unknown value(s) ['hexagon']"),
        ("world={colours: [red, teal]}", "world: colours has unknown value(s) ['teal']"),
        ("world={n_test: 0}", "['world']['n_test']"),
        ("world={image_size: 60}", "world.image_size: 60 is not a multiple of the tiny LLaVA's patch size"),
        # Found at start from the training settings, not in extract after captioning.
        ("models={shapes-llava: {layers: [2, 9]}}", "models.shapes-llava.layers: ['9'] beyond the model's 4 decoder blocks"),
        ("train_lmm={stepz: 3}", "'stepz' was unexpected"),
        ("train_clip={lr: fast}", "['train_clip']['lr']"),
        ("datasets={shapes: {clip: {name: shapes-clip, path: x, pretraind: y}}}", "'pretraind' was unexpected"),
        ("models={shapes-llava: {report_layer: 3}}", "models.shapes-llava.report_layer: 3 is not one of its layers"),
        ("decomposition={methods: [snmf, nmf]}", "decomposition.methods: unknown method(s) ['nmf']"),
        ("decomposition={device: gpu}", "['decomposition']['device']"),
        ("datasets={shapes: {restval: val}}", "['restval']"),
        ("mutual={shapes-classes: {models: {odd: {model: ViT-Q-99, pretrained: openai}}}}",
         "mutual.shapes-classes.models.odd.model: 'ViT-Q-99' is not an open_clip model name"),
        ("mutual={shapes-classes: {settings: {methods: [pca, ica]}}}", "['methods']"),
        ("mutual={shapes-classes: {settings: {n_concepts: 6, curve_length: 16}}}", "mutual.shapes-classes.settings: curve_length 16 is shorter"),
        ("mutual={shapes-classes: {family: false}}", "mutual.shapes-classes: no models"),
        ("mutual={imagenet-val: {settings: {foreground: truth}}}", "mutual.imagenet-val.settings.foreground: truth takes the true object masks"),
        ("clip_family={checkpoints: [0, 900]}", "clip_family: checkpoints [900] must lie in 0…steps"),
        ("clip_family={gap: shape}", "['clip_family']['gap']"),
    ],
)
def test_a_wrong_config_value_names_its_key(micro_run, override, named):
    proc = snakemake(micro_run, "--dry-run", "--config", override, check=False)
    assert named in failure_text(proc)


def test_a_layer_beyond_a_local_checkpoints_depth_is_named_at_start(micro_run):
    # The trained tiny LLaVA's own config.json (4 blocks) is read before any job.
    model = micro_run / "resources/models/shapes-llava"
    override = f"models={{shapes-llava: {{path: {model}, layers: [5]}}}}"
    proc = snakemake(micro_run, "--dry-run", "--config", override, check=False)
    assert "models.shapes-llava.layers: ['5'] beyond the model's 4 decoder blocks" in failure_text(proc)


def test_a_word_with_an_apostrophe_reaches_the_stage_intact(micro_run):
    """Every path is quoted in the rules' shell lines: the word's own error, not a shell syntax error."""
    proc = snakemake(micro_run, "--config", "models={shapes-llava: {tokens: [\"circle's\"]}}", check=False)
    text = failure_text(proc)
    assert re.search(r"word \"circle's\": no (train|test) samples kept", text), text[-3000:]


def test_decomposition_on_cuda_asks_for_the_gpu_and_cpu_does_not(micro_run):
    target = str(TOKEN_DIR / "layer2/snmf/k4/dictionary.npz")
    for device, gpus in (("cpu", "0"), ("cuda", "1")):
        out = snakemake(micro_run, "--dry-run", "--forcerun", "decompose", "--config", f"decomposition={{device: {device}}}", "--", target).stdout
        block = out.split("rule decompose:", 1)[1].split("\n\n", 1)[0]
        assert re.search(rf"resources: .*gpu={gpus}", block), block


def test_a_model_path_that_does_not_exist_is_named(micro_run):
    proc = snakemake(micro_run, "--dry-run", "--config", "models={shapes-llava: {path: /no/such/model}}", check=False)
    assert "models.shapes-llava.path: /no/such/model does not exist" in failure_text(proc)


def test_missing_and_corrupt_images_are_skipped_and_counted(run_copy):
    # A user's data set (not the generated world): one test image gone, one corrupt.
    data = run_copy / "data/shapes"
    shutil.copytree(run_copy / "resources/worlds/shapes", data)
    test_images = sorted(
        img["filename"] for img in json.loads((data / "captions.json").read_text())["images"] if img["split"] == "test"
    )
    (data / "images" / test_images[0]).unlink()
    (data / "images" / test_images[1]).write_bytes(b"not a png")
    dataset = f"{{captions: {data}/captions.json, images: {data}, factors: {data}/factors.json}}"
    snakemake(run_copy, "--config", f"datasets={{shapes: {dataset}}}", "--", str(TOKEN_DIR / "samples/test.json"))

    counts = json.loads((run_copy / TOKEN_DIR / "samples/test.json").read_text())["counts"]
    assert counts["skipped_images"] == 2
    assert counts["images_seen"] == len(test_images) - 2


def test_the_workflow_passes_snakemakes_linter(tmp_path):
    proc = snakemake(tmp_path, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_snakemake_report_gathers_reports_and_metrics(micro_run, tmp_path):
    import zipfile

    snakemake(micro_run, "--report", str(tmp_path / "report.zip"))
    names = zipfile.ZipFile(tmp_path / "report.zip").namelist()
    gathered = sorted(Path(n).name for n in names if "/data/raw/" in n)  # the files flagged with report()
    assert gathered == ["metrics.json"] * 10 + ["report.html"] * 5  # concepts, shift, two steering, mutual
