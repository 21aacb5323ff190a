"""The mutual-knowledge stage end to end on tiny CLIPs: outputs, determinism, the truth check, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmconcepts.data.classification import load_classification
from mmconcepts.errors import MMConceptsError
from mmconcepts.mutual.encoders import ClipEncoders
from mmconcepts.mutual.foreground import best_patch_mask, foreground_masks
from mmconcepts.mutual.run import run_mutual
from mmconcepts.mutual.summary import summarise
from mmconcepts.mutual.truth import check_against_truth, image_key
from mmconcepts.shapes.clip_family import train_width
from mmconcepts.shapes.world import generate_world

SETTINGS = {"n_concepts": 3, "top_k": 10, "u": 4, "batch_size": 16}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mutual") / "world"
    generate_world(out, n_train=32, n_val=0, n_test=6, image_size=32, shapes=["circle", "star", "cross"], classes_per_shape=3, classes_train_per_shape=2)
    return out


@pytest.fixture(scope="module")
def family(world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mutual") / "w32"
    train_width(world, out, 32, widths=[32], steps=4, checkpoints=[0, 4], batch_size=16, warmup=1)
    return out


def _dataset(world: Path) -> dict:
    c = world / "classes"
    return {"images": str(c / "images"), "descriptors": str(c / "descriptors.json"), "templates": str(c / "templates.json"),
            "classes": str(c / "classes.json"), "masks": str(c / "masks"), "truth": str(c / "truth.json")}  # fmt: skip


@pytest.fixture(scope="module")
def run(world, family, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mutual") / "w32-s4"
    run_mutual(_dataset(world), "w32-s4", {"path": str(family / "w32-s4")}, SETTINGS, out)
    return out


def explanations_of(run: Path, method: str) -> list[dict]:
    return [json.loads(line) for line in (run / method / "explanations.jsonl").read_text().splitlines()]


def test_each_method_gets_its_figures_curves_and_explanations(run):
    for method in ("pca", "kmeans"):
        mi = json.loads((run / method / "mi.json").read_text())
        n = mi["images"]
        assert n == 3 * 3 and mi["method"] == method and mi["gap"] == "background"
        assert 0 <= mi["top1"] <= 1 and mi["foreground"]["images"] == n
        curves = np.load(run / method / "curves.npz")
        assert curves["mi"].shape == (n, 16) and curves["deletion"].shape == (n, 4)  # n_concepts + 1 steps
        assert np.isclose(mi["auc"], curves["mi"].mean(0).mean())
        regions = np.load(run / method / "regions.npz")
        assert regions["concepts"].shape == (n, 4, 4) and regions["concepts"].max() < 3
        assert ((regions["concepts"] >= 0) <= regions["foreground"]).all()  # concepts only on the foreground
        fg = mi["foreground"]
        assert fg["iou_mean"] <= fg["iou_ceiling"] <= 1  # no patch mask beats the best one
        assert fg["without_foreground"] == np.mean([not f.any() for f in regions["foreground"]])
        assert fg["without_foreground"] == np.mean([not e["concepts"] for e in explanations_of(run, method)])
        explanations = explanations_of(run, method)
        assert len(explanations) == n
        for e in explanations:
            assert set(e["mutual"]) == set(e["dv"]) & set(e["dy"]) and len(e["dy"]) == 4
            assert len(e["dv"]) <= 3 * 3 and len(set(e["dv"])) == len(e["dv"])
            assert sorted(e["order"]) == sorted(e["concepts"])
            assert e["mi"] == (np.log(len(e["dv"]) * 4 * len(e["mutual"])) if e["mutual"] else 0)


def test_same_seed_same_result(world, family, run, tmp_path):
    again = tmp_path / "again"
    run_mutual(_dataset(world), "w32-s4", {"path": str(family / "w32-s4")}, SETTINGS, again)
    for method in ("pca", "kmeans"):
        a, b = (json.loads((d / method / "mi.json").read_text()) for d in (run, again))
        a.pop("seconds"), b.pop("seconds")
        assert a == b
        assert (run / method / "explanations.jsonl").read_text() == (again / method / "explanations.jsonl").read_text()
        for name in ("curves.npz", "regions.npz"):
            x, y = np.load(run / method / name), np.load(again / method / name)
            assert all(np.array_equal(x[k], y[k]) for k in x.files)


def test_truth_foreground_is_the_best_patch_mask_of_each_object(world, family, tmp_path):
    dataset, model, settings = _dataset(world), {"path": str(family / "w32-s4")}, {**SETTINGS, "foreground": "truth"}
    run_mutual(dataset, "w32-s4", model, settings, tmp_path / "truth")
    fg = json.loads((tmp_path / "truth" / "pca" / "mi.json").read_text())["foreground"]
    assert fg["iou_mean"] == pytest.approx(fg["iou_ceiling"]) and fg["without_foreground"] == 0
    regions = np.load(tmp_path / "truth" / "pca" / "regions.npz")
    explanation = explanations_of(tmp_path / "truth", "pca")[0]
    mask = np.asarray(Image.open(Path(dataset["masks"]) / image_key(explanation["image"]))) > 127
    assert np.array_equal(regions["foreground"][0], best_patch_mask(mask, regions["foreground"].shape[1:]))
    checks = summarise("tiny", [str(tmp_path / "truth")])["checks"]
    assert "foreground" not in checks and "gap" in checks  # the foreground is the truth: nothing to check there
    with pytest.raises(MMConceptsError, match="foreground: truth needs the set's object masks"):
        run_mutual({**dataset, "masks": None}, "w32-s4", model, settings, tmp_path / "without-masks")


def test_the_foreground_settings_reach_the_decomposition(world, family, tmp_path):
    dataset, model = _dataset(world), {"path": str(family / "w32-s4")}
    settings = {**SETTINGS, "foreground": "image", "affinity": "centred"}
    run_mutual(dataset, "w32-s4", model, settings, tmp_path / "centred")
    regions = np.load(tmp_path / "centred" / "kmeans" / "regions.npz")
    data = load_classification(dataset["images"], dataset["descriptors"], dataset["templates"], dataset["classes"])
    _, tokens = ClipEncoders.load("w32-s4", model).images_and_tokens([Image.open(path).convert("RGB") for path, _ in data.images])
    labels = np.array([label for _, label in data.images])
    expected = foreground_masks(tokens, labels, "image", affinity="centred")
    assert np.array_equal(regions["foreground"], expected)
    assert not np.array_equal(expected, foreground_masks(tokens, labels, "image", affinity="gram"))  # the setting mattered


def test_summary_reads_the_runs_and_leaves_the_control_out(world, family, run, tmp_path):
    control = tmp_path / "w32-s0"
    run_mutual(_dataset(world), "w32-s0", {"path": str(family / "w32-s0"), "control": True}, SETTINGS, control)
    summary = summarise("tiny", [str(control), str(run)])
    assert [m["model"] for m in summary["models"]] == ["w32-s0", "w32-s4"]
    assert [m["control"] for m in summary["models"]] == [True, False]
    assert summary["auc_vs_top1"]["pca"]["n"] == 1  # one trained model: no correlation to read
    assert summary["auc_vs_top1"]["pca"]["spearman"] is None and summary["checks"]["spearman"]["pca"]["holds"] is False
    assert summary["checks"]["control_auc"]["kmeans"]["control_max"] == summary["models"][0]["methods"]["kmeans"]["auc"]


def test_truth_check_counts_the_gap_and_what_is_true():
    descriptors = ["a round outline", "a bright red surface", "tall grass blades", "five pointed tips"]
    truth = {
        "descriptors": {"a round outline": {"attribute": "shape", "value": "circle"},
                        "a bright red surface": {"attribute": "colour", "value": "red"},
                        "tall grass blades": {"attribute": "background", "value": "grass"},
                        "five pointed tips": {"attribute": "shape", "value": "star"}},
        "images": {"circle/1.png": {"shape": "circle", "colour": "red", "background": "grass"},
                   "circle/2.png": {"shape": "circle", "colour": "blue", "background": "sky"}},
    }  # fmt: skip
    explanations = [
        {"image": "x/circle/1.png", "dv": [0, 2], "dy": [0, 2, 3], "mutual": [0, 2]},  # a gap descriptor is mutual
        {"image": "x/circle/2.png", "dv": [1, 3], "dy": [1, 3], "mutual": [1, 3]},  # neither is true of it
    ]
    out = check_against_truth(explanations, descriptors, truth, gap="background")
    assert out["gap"]["mutual_images"] == 1 and out["gap"]["never_mutual"] is False
    assert out["attributes"]["shape"] == {"dv": 1.0, "dy": 1.0, "mutual": 1.0}
    assert out["attributes"]["colour"]["mutual"] == 0.5
    assert out["mutual_true_share"] == 1 / 3  # "a round outline" of a circle; red and star are not true of image 2


def test_a_cnn_is_a_clear_error(tmp_path):
    import open_clip
    from safetensors.torch import save_file

    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 1, "layers": 1}}  # fmt: skip
    model = open_clip.CLIP(**cfg)
    (tmp_path / "rn").mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "rn" / "open_clip_model.safetensors")
    (tmp_path / "rn" / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    from mmconcepts.mutual.encoders import ClipEncoders

    with pytest.raises(MMConceptsError, match=r"model 'tiny-rn' has a ModifiedResNet vision tower; mutual knowledge needs a ViT"):
        ClipEncoders.load("tiny-rn", {"path": str(tmp_path / "rn")})


def test_an_unknown_open_clip_name_is_named(tmp_path):
    from mmconcepts.mutual.encoders import ClipEncoders

    with pytest.raises(MMConceptsError, match=r"ViT-Q-99"):
        ClipEncoders.load("odd", {"model": "ViT-Q-99", "pretrained": "openai"})


def test_a_class_without_images_is_named(world, family, tmp_path):
    import shutil

    copy = tmp_path / "classes"
    shutil.copytree(world / "classes", copy)
    for f in (copy / "images" / "star").iterdir():
        f.unlink()
    dataset = {**_dataset(world), "images": str(copy / "images")}
    with pytest.raises(MMConceptsError, match=r"star: class 'star' has no images"):
        run_mutual(dataset, "w32-s4", {"path": str(family / "w32-s4")}, SETTINGS, tmp_path / "out")
    assert not (tmp_path / "out").exists()

