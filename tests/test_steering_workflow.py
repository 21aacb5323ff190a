"""Steering as the workflow runs it on the micro world: sets, vectors, the sweep, its report."""

from __future__ import annotations

import json

import pytest
from conftest import snakemake
from test_workflow import failure_text, planned_jobs

YES_NO, RED = "results/steering/shapes-yes-to-no", "results/steering/shapes-to-red"
LAYER = {YES_NO: 4, RED: 2}  # of each entry's sweep in tests/configs/micro.yaml


def read(run, path):
    return json.loads((run / path).read_text())


def test_the_tiny_llava_answers_questions(micro_run):
    vqa = read(micro_run, "resources/models/shapes-llava/training.json")["quality"]["vqa"]
    assert vqa["overall"] >= 0.5 and set(vqa["by_type"]) == {"yes/no", "number", "other"}  # the micro gate


def test_vectors_say_how_they_were_made(micro_run):
    facts = read(micro_run, f"{YES_NO}/layer4/vector.json")
    sets = read(micro_run, f"{YES_NO}/sets.json")
    assert facts["model"] == "shapes-llava" and facts["layer"] == "4" and facts["norm"] > 0
    assert facts["sets"]["base"]["spec"] == {"answer": "yes"} and facts["sets"]["target"]["spec"] == {"answer": "no"}
    assert facts["sets"]["base"]["size"] == len(sets["base"]["items"]) <= 100
    assert all(i["text"].lower() == "yes" for i in sets["base"]["items"])  # what the model said chose the set
    red = read(micro_run, f"{RED}/sets.json")
    assert red["target"]["items"] and all("red" in i["text"].lower().split() for i in red["target"]["items"])
    assert red["base"]["kind"] == "before_eos" and red["target"]["kind"] == "word"


def test_the_sweep_has_every_alpha_and_the_random_control(micro_run):
    for name, alphas in ((YES_NO, [1.0, 2.0]), (RED, [0.25, 1.0])):
        run = read(micro_run, f"{name}/layer{LAYER[name]}/steer.json")
        assert [r["alpha"] for r in run["runs"]] == alphas and run["random"]["alpha"] == max(alphas)
    vqa = read(micro_run, f"{YES_NO}/layer4/steer.json")
    strongest = vqa["runs"][-1]["figures"]
    assert strongest["targeted"] > 0 and strongest["flip_rate"] > vqa["random"]["figures"]["flip_rate"]


def test_the_steering_reports_are_linked_from_the_index(micro_run):
    index = (micro_run / "results/index.html").read_text()
    for name in (YES_NO, RED):
        assert f'href="{name.removeprefix("results/")}/report.html"' in index
        html = (micro_run / name / "report.html").read_text()
        assert 'id="sweep-table"' in html and 'id="best-setting"' in html


def test_a_new_alpha_reruns_only_steer_and_after(micro_run):
    jobs = planned_jobs(micro_run, "--config", "steering={shapes-yes-to-no: {alphas: [1, 2, 4]}}")
    assert jobs == {"steer": 1, "steering_report": 1, "index": 1}


@pytest.mark.parametrize(
    "override, named",
    [
        ("steering={shapes-yes-to-no: {alphas: [1, strong]}}", "['alphas']"),
        ("steering={shapes-yes-to-no: {layers: [9]}}", "steering.shapes-yes-to-no.layers: ['9'] beyond the model's 4 decoder blocks"),
        # --config merges into the entry's set: {answer: 'no', colour: red} is no set
        ("steering={shapes-yes-to-no: {target: {colour: red}}}", "is not a set; use {answer: X}, {word: W} or before_eos"),
        ("steering={shapes-to-red: {task: vqa}}", "steering.shapes-to-red: a vqa entry steers between two answers"),
        ("steering={shapes-yes-to-no: {model: llava-9}}", "steering.shapes-yes-to-no.model: 'llava-9' is not a model entry"),
    ],
)
def test_a_wrong_steering_config_is_named_at_start(micro_run, override, named):
    proc = snakemake(micro_run, "--dry-run", "--config", override, check=False)
    assert named in failure_text(proc)


def test_a_set_the_model_never_says_is_named(run_copy):
    # On a copy: Snakemake removes the outputs of a failed job, here the entry's sets.json.
    proc = snakemake(run_copy, "--config", "steering={shapes-yes-to-no: {target: {answer: maybe}}}", "--", f"{YES_NO}/sets.json", check=False)
    assert "steering.shapes-yes-to-no.target: no train sample for {'answer': 'maybe'}" in failure_text(proc)


def test_vectors_read_from_a_dictionary_and_from_a_shift(run_copy):
    import numpy as np
    from safetensors.numpy import load_file

    concepts, shift = "results/steering/shapes-concepts", "results/steering/shapes-places-shift"
    snakemake(run_copy, "--", f"{concepts}/report.html", f"{shift}/layer2/vector.safetensors", f"{shift}/layerfinal/vector.safetensors")
    components = np.load(run_copy / "results/shapes-llava/circle/layer2/kmeans/k4/dictionary.npz")["components"]
    np.testing.assert_allclose(load_file(str(run_copy / f"{concepts}/layer2/vector.safetensors"))["vector"], components[1] - components[0], rtol=1e-6)
    for layer in ("2", "final"):
        shifts = np.load(run_copy / f"results/shift/shapes-llava--shapes-llava-places/circle/layer{layer}/kmeans/k4/shift_vectors.npz")["shifts"]
        np.testing.assert_allclose(load_file(str(run_copy / f"{shift}/layer{layer}/vector.safetensors"))["vector"], shifts[0], rtol=1e-6)
    facts = read(run_copy, f"{concepts}/layer2/vector.json")
    assert facts["sets"]["target"]["spec"] == {"concept": 1} and "u_1 − u_0" in facts["sets"]["target"]["position"]
    assert not (run_copy / f"{concepts}/sets.json").exists()  # no sets are chosen for a vector read from results
    html = (run_copy / f"{concepts}/report.html").read_text()
    assert "u_1 − u_0" in html and 'id="sweep-table"' in html


@pytest.mark.parametrize(
    "override, named",
    [
        ("steering={shapes-concepts: {vector: {concepts: [0, 4]}}}", "concepts [0, 4] are not indices of a dictionary of k = 4 concepts"),
        ("steering={shapes-concepts: {layers: [3]}}", "steering.shapes-concepts.layers: [3] not among models.shapes-llava.layers"),
        ("steering={shapes-places-shift: {vector: {analysis: nowhere}}}", "steering.shapes-places-shift.vector.analysis: 'nowhere' is not a shifts entry"),
        ("steering={shapes-places-shift: {model: shapes-llava-places}}", "shift 'shapes-places' moves 'shapes-llava', not this entry's model"),
    ],
)
def test_a_wrong_vector_entry_is_named_at_start(micro_run, override, named):
    proc = snakemake(micro_run, "--dry-run", "--config", override, check=False)
    assert named in failure_text(proc)
