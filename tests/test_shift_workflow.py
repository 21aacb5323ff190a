"""The shift analysis as the workflow runs it on the micro world: the fine-tune, the shift, its report."""

from __future__ import annotations

import json
import re

import pytest
from conftest import snakemake
from safetensors.numpy import load_file
from test_workflow import failure_text, planned_jobs

from mmconcepts.shapes.styles import style_rates

PAIR = "results/shift/shapes-llava--shapes-llava-places/circle"
SHIFT_REPORT = f"{PAIR}/report.html"
ORIGINAL, FINETUNED = "resources/models/shapes-llava", "resources/models/shapes-llava-places"


def captions(run, model: str) -> list[dict]:
    return [json.loads(line) for line in (run / f"results/{model}/captions/train.jsonl").read_text().splitlines()]


def test_the_fine_tune_says_the_planted_words_and_the_original_does_not(micro_run):
    style = json.loads((micro_run / "resources/worlds/shapes/styles/places/style.json").read_text())
    factors = json.loads((micro_run / "resources/worlds/shapes/factors.json").read_text())["images"]
    rates = {}
    for model in ("shapes-llava", "shapes-llava-places"):
        rows = captions(micro_run, model)
        rates[model] = style_rates([r["caption"] for r in rows], [factors[r["id"]] for r in rows], style["planted"], "background")
    assert rates["shapes-llava"]["style_rate"] == 0.0
    assert rates["shapes-llava-places"]["style_rate"] >= 0.5  # the micro gate; the default run's is 0.9
    assert rates["shapes-llava-places"]["style_right"] > 0.3  # the right place for the image, not any place word


def test_the_fine_tune_shares_tokenizer_and_vision_tower_and_changes_the_language_model(micro_run):
    assert (micro_run / ORIGINAL / "tokenizer.json").read_bytes() == (micro_run / FINETUNED / "tokenizer.json").read_bytes()
    a = load_file(micro_run / ORIGINAL / "model.safetensors")
    b = load_file(micro_run / FINETUNED / "model.safetensors")
    assert a.keys() == b.keys()
    vision = [key for key in a if "vision_tower" in key]
    language = [key for key in a if "language_model" in key]
    assert vision and all((a[key] == b[key]).all() for key in vision)  # frozen
    assert language and any((a[key] != b[key]).any() for key in language)
    training = json.loads((micro_run / FINETUNED / "training.json").read_text())
    assert training["finetune"]["style"] == "places" and training["finetune"]["from"] == ORIGINAL


def test_the_shift_compares_the_samples_both_models_kept(micro_run):
    kept = {}
    for model in ("shapes-llava", "shapes-llava-places"):
        rows = json.loads((micro_run / f"results/{model}/circle/samples/train.json").read_text())["samples"]
        kept[model] = {r["id"] for r in rows}
    common = kept["shapes-llava"] & kept["shapes-llava-places"]
    style = json.loads((micro_run / "resources/worlds/shapes/styles/places/style.json").read_text())
    for layer in ("2", "final"):
        run = json.loads((micro_run / PAIR / f"layer{layer}/kmeans/k4/shift.json").read_text())
        assert run["n_common"] == len(common) > 4
        assert sum(c["n_samples"] for c in run["concepts"]) == len(common)
        assert sorted(c["matched"] for c in run["concepts"]) == [0, 1, 2, 3]
        assert run["truth"]["planted_words"] == style["planted_words"]
        shown = {m["id"] for c in run["concepts"] for m in c["mas_shifted"]}
        assert shown <= common


def test_the_shift_report_is_linked_from_the_index(micro_run):
    index = (micro_run / "results/index.html").read_text()
    assert f'href="{SHIFT_REPORT.removeprefix("results/")}"' in index
    html = (micro_run / SHIFT_REPORT).read_text()
    assert "Shift of “circle” from shapes-llava to shapes-llava-places" in html
    assert 'id="truth-table"' in html and html.count("<tr><td>") >= 4  # recovery and truth rows, two layers each


@pytest.mark.parametrize("override", ["shifts={shapes-places: {k: 3}}", "shifts={shapes-places: {aggregate: median}}"])
def test_changing_the_shifts_k_or_aggregate_reruns_only_the_shift(micro_run, override):
    assert planned_jobs(micro_run, "--config", override) == {"shift": 2, "shift_report": 1, "index": 1}


@pytest.mark.parametrize(
    "override, named",
    [
        ("models={shapes-llava-places: {finetune: {style: pirate}}}", "models.shapes-llava-places.finetune.style: unknown style 'pirate'"),
        ("models={shapes-llava-places: {finetune: {from: llava-9}}}", "models.shapes-llava-places.finetune.from: 'llava-9' is not another model entry"),
        ("models={shapes-llava-places: {path: resources/models/elsewhere}}", "a fine-tune built by the workflow lives in resources/models/shapes-llava-places"),
        ("shifts={shapes-places: {layers: [3]}}", "shifts.shapes-places.layers: ['3'] not extracted for the original model"),
        ("shifts={shapes-places: {finetuned: shapes-llava-sentiment}}", "shifts.shapes-places.finetuned: 'shapes-llava-sentiment' is not a model entry"),
        ("shifts={shapes-places: {method: nmf}}", "shifts.shapes-places.method: unknown method 'nmf'"),
        ("shifts={shapes-places: {aggregate: mode}}", "['aggregate']"),
        ("world={styles: [sentiment]}", "models.shapes-llava-places.finetune.style: unknown style 'places'; the world writes: sentiment"),
    ],
)
def test_a_wrong_shift_config_is_named_at_start(micro_run, override, named):
    proc = snakemake(micro_run, "--dry-run", "--config", override, check=False)
    assert named in failure_text(proc)


def test_a_user_defines_a_second_fine_tune_and_shift_in_the_config_alone(micro_run):
    sentiment = (
        "models={shapes-llava-sentiment: {finetune: {from: shapes-llava, style: sentiment}, adapter: llava,"
        " path: resources/models/shapes-llava-sentiment, dataset: shapes, tokens: [circle], layers: [2], enabled: false}}"
    )
    shift = "shifts={shapes-sentiment: {original: shapes-llava, finetuned: shapes-llava-sentiment, tokens: [circle], layers: [2], k: 4}}"
    jobs = planned_jobs(micro_run, "--config", sentiment, shift)
    assert jobs == {
        "finetune_lmm": 1, "captions": 1, "gather_captions": 1, "select": 1, "extract": 1, "gather_features": 1, "lens": 1,
        "shift": 1, "shift_report": 1, "index": 1,
    }  # fmt: skip
    out = snakemake(micro_run, "--dry-run", "--config", sentiment, shift).stdout
    assert re.search(r"results/shift/shapes-llava--shapes-llava-sentiment/circle/report\.html", out)
