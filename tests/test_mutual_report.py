"""The mutual-knowledge report, rendered from synthetic run folders in the layout a ``mutual`` job writes."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmconcepts.errors import MMConceptsError
from mmconcepts.mutual.settings import mutual_settings
from mmconcepts.mutual.summary import summarise
from mmconcepts.mutual.truth import check_against_truth
from mmconcepts.report.mutual import PALETTE, best_model, foreground_rule, pick_examples, render_mutual_report

CLASSES = ["circle", "square"]
# (descriptor, attribute, value); "background" is the planted gap, "<b>bold</b>" must stay text.
BANK = [
    ("a round outline", "shape", "circle"),
    ("<b>bold</b>", "shape", "square"),
    ("four corners", "shape", "square"),
    ("a plain grey backdrop", "background", "grey"),
    ("a red surface", "colour", "red"),
    ("a blue surface", "colour", "blue"),
]
DESCRIPTORS = [d for d, _, _ in BANK]
# name → (control, top1, per method (mi, auc, deletion, insertion, acc_drop, acc_inc), foreground IoU)
MODELS = {
    "random": (True, 0.25, {"pca": (0.5, 0.100, 0.9, 0.8, 1.5, 0.5), "kmeans": (0.6, 0.450, 0.9, 0.8, 1.5, 0.5)}, 0.2),
    "small": (False, 0.5, {"pca": (1.5, 0.200, 0.7, 1.1, 1.2, 1.0), "kmeans": (1.4, 0.300, 0.8, 1.0, 1.3, 0.9)}, 0.4),
    "mid": (False, 0.625, {"pca": (1.8, 0.400, 0.6, 1.3, 1.1, 1.2), "kmeans": (1.7, 0.500, 0.7, 1.2, 1.2, 1.1)}, 0.5),
    "large": (False, 0.75, {"pca": (2.1, 0.731, 0.5, 1.6, 0.9, 1.4), "kmeans": (2.0, 0.642, 0.6, 1.5, 1.0, 1.3)}, 0.6),
}
GRID = 4  # patches per side


def _images(folder: Path) -> list[tuple[str, str]]:
    """Two tiny PNGs per class: a red or a blue square (the object) on grey; (path, class)."""
    out = []
    for c in CLASSES:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            a = np.full((32, 32, 3), 200, np.uint8)
            a[8:24, 8:24] = (220, 40, 40) if c == "circle" else (40, 60, 220)
            path = folder / c / f"{i:03d}.png"
            Image.fromarray(a).save(path)
            out.append((str(path), c))
    return out


def _explanations(images, predicted: list[str], with_bold: bool) -> list[dict]:
    """Concepts 0 (the object) and 1 (the backdrop); the backdrop is seen but never on the language side."""
    out = []
    for (path, label), pred in zip(images, predicted):
        shape = [0] if pred == "circle" else [1 if with_bold else 2]
        per_concept = [[*shape, 4 if label == "circle" else 5], [3]]
        dy = [*shape, 5 if pred == "square" else 4]
        dv = [d for ds in per_concept for d in ds]
        out.append({
            "image": path, "label": label, "predicted": pred, "concepts": [0, 1], "order": [1, 0],
            "per_concept": per_concept, "dv": dv, "dy": dy, "mutual": [d for d in dv if d in dy], "mi": 2.0,
        })  # fmt: skip
    return out


def _regions(n: int) -> dict:
    concepts = np.full((n, GRID, GRID), -1, np.int8)
    concepts[:, 1:3, 1:3] = 0  # the object, centre
    concepts[:, 0, :] = 1  # a strip of backdrop, top row
    labels = np.array([i // 2 for i in range(n)])
    return {"foreground": concepts >= 0, "concepts": concepts, "labels": labels, "predicted": labels}


def _curves(n: int, auc: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    mi = np.zeros((n, 16))
    mi[:, :4] = rng.uniform(1, 2, (n, 4))
    deletion = np.sort(rng.uniform(0, 1, (n, 4)), axis=1)[:, ::-1]
    return {"mi": mi, "mi_mean": mi.mean(0) * auc, "deletion": deletion, "insertion": deletion[:, ::-1],
            "acc_drop": (deletion > 0.5).astype(float), "acc_inc": (deletion[:, ::-1] > 0.5).astype(float)}  # fmt: skip


def write_runs(root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Run folders of four CLIPs (one a control) × two methods, as ``run_mutual`` writes them, and the images."""
    images = _images(root / "images")
    truth = {
        "descriptors": {d: {"attribute": a, "value": v} for d, a, v in BANK},
        "images": {f"{Path(p).parent.name}/{Path(p).name}": {"shape": c, "colour": "red" if c == "circle" else "blue"} for p, c in images},
    }
    settings = mutual_settings(n_concepts=3, top_k=10, u=3)
    folders = []
    for k, (name, (control, top1, figures, iou)) in enumerate(MODELS.items()):
        folder = root / "results" / name
        predicted = [c if j < round(top1 * len(images)) else CLASSES[1 - CLASSES.index(c)] for j, (_, c) in enumerate(images)]
        for method, (mi, auc, deletion, insertion, acc_drop, acc_inc) in figures.items():
            out = folder / method
            out.mkdir(parents=True)
            explanations = _explanations(images, predicted, with_bold=name == "large")
            mi_json = {
                "entry": "toy", "model": name, "method": method, "control": control, "gap": "background", "top1": top1,
                "mi": mi, "auc": auc, "deletion": deletion, "insertion": insertion, "acc_drop": acc_drop, "acc_inc": acc_inc,
                "dv_size": 3.0, "mutual_size": 1.0 + k / 10, "assignment_entropy": 1.25,
                "foreground": {"iou_mean": iou, "iou_median": iou, "corloc": iou + 0.1, "iou_ceiling": 0.8, "without_foreground": 0.05,
                               "images": len(images)},
                "truth": check_against_truth(explanations, DESCRIPTORS, truth, "background"),
                "images": len(images), "classes": CLASSES, "descriptors": DESCRIPTORS, "settings": settings, "seconds": 1.0,
            }  # fmt: skip
            (out / "mi.json").write_text(json.dumps(mi_json))
            np.savez(out / "curves.npz", **_curves(len(images), auc, k))
            np.savez(out / "regions.npz", **_regions(len(images)))
            (out / "explanations.jsonl").write_text("".join(json.dumps(e) + "\n" for e in explanations))
        folders.append(str(folder))
    return folders, images


def render_toy(root: Path, *, missing: bool = True) -> tuple[str, dict, list]:
    """The synthetic entry's report (with one image file deleted); its HTML, summary and images."""
    folders, images = write_runs(root)
    if missing:
        Path(images[2][0]).unlink()
    summary = summarise("toy", folders)
    render_mutual_report(root / "report.html", summary)
    return (root / "report.html").read_text(encoding="utf-8"), summary, images


class _Tables(HTMLParser):
    """Rows of cell texts of the table with a given id."""

    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.inside, self.rows, self.cell = table_id, False, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def table_rows(html: str, table_id: str) -> list[list[str]]:
    parser = _Tables(table_id)
    parser.feed(html)
    return parser.rows


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return render_toy(tmp_path_factory.mktemp("mutual"))


def test_title_lede_and_footer(toy):
    html, _, _ = toy
    assert "<title>Mutual knowledge toy</title>" in html
    assert "<h1>Mutual knowledge toy</h1>" in html
    assert "mmconcepts 0.1.0 · mutual knowledge (Sammani &amp; Deligiannis, NeurIPS 2024)" in html
    meta = html.split('<dl class="meta">', 1)[1].split("</dl>", 1)[0]
    for expected in ("<dd>toy</dd>", "<dd>4</dd>", "2: circle, square", "random (control)", "kmeans, pca", "u = 3", "top-10",
                     "mean − 0.02", "Sinkhorn", "log(N·u·m)"):  # fmt: skip
        assert expected in meta, expected


def test_checks_come_first_with_holds_or_fails(toy):
    html, summary, _ = toy
    # The control's k-means AUC (0.45) is above the small model's (0.30): that check fails on purpose.
    assert summary["checks"]["control_auc"]["kmeans"]["holds"] is False
    assert summary["checks"]["control_auc"]["pca"]["holds"] is True
    expected = {"check-spearman": "holds", "check-control": "fails", "check-gap": "holds", "check-foreground": "holds"}
    for check_id, verdict in expected.items():
        assert f'<section id="{check_id}" class="check {verdict}">' in html, check_id
    assert html.index('id="checks"') < html.index('id="figures-table"') < html.index('id="examples"')
    control = html.split('id="check-control"', 1)[1].split("</section>", 1)[0]
    assert re.search(r'<li class="fails"><b>kmeans</b>: control AUC 0\.450 against the trained models&#39; lowest 0\.300', control)
    assert re.search(r'<li class="holds"><b>pca</b>: control AUC 0\.100 against the trained models&#39; lowest 0\.200', control)
    spearman = html.split('id="check-spearman"', 1)[1].split("</section>", 1)[0]
    assert "ρ = 1.000" in spearman and "≥ 0.8" in spearman
    gap = html.split('id="check-gap"', 1)[1].split("</section>", 1)[0]
    assert "background mutual in 0 of 3 trained models" in gap and "0 of 4" in gap
    foreground = html.split('id="check-foreground"', 1)[1].split("</section>", 1)[0]
    assert "<b>large</b>: mean IoU 0.600 (best possible at this patch grid 0.800), CorLoc 0.700, images without foreground 0.050" in foreground
    assert "second singular vector of a class&#39;s stacked tokens" in foreground  # the entry's foreground setting, named
    centred = {**mutual_settings(), "foreground": "image", "affinity": "centred"}
    assert foreground_rule(centred) == "first singular vector, after centring, of each image's own tokens, largest component"
    assert "3 of 4 hold." in html


def test_the_table_has_a_row_per_model_and_method_with_the_figures_written(toy):
    html, _, _ = toy
    rows = table_rows(html, "figures-table")
    header, body = rows[0], rows[1:]
    assert header[:3] == ["method", "model", "top-1"] and "AUC" in header and "OT entropy" in header
    assert len(body) == len(MODELS) * 2
    by_key = {(r[0], r[1].replace("(control)", "").strip()): dict(zip(header, r)) for r in body}
    for name, (control, top1, figures, _) in MODELS.items():
        for method, (mi, auc, deletion, insertion, acc_drop, acc_inc) in figures.items():
            row = by_key[(method, name)]
            assert row["top-1"] == f"{top1:.3f}"
            assert (row["MI (t = 0)"], row["AUC"], row["Deletion ↓"], row["Insertion ↑"]) == tuple(
                f"{v:.3f}" for v in (mi, auc, deletion, insertion)
            )
            assert (row["AccDrop ↓"], row["AccInc ↑"]) == (f"{acc_drop:.3f}", f"{acc_inc:.3f}")
            assert ("(control)" in row["model"]) == control
    assert re.search(r'<tr class="reference"><td>pca</td><td class="left">random<span class="control-tag">', html)


def test_the_plots_are_embedded(toy):
    html, summary, _ = toy
    plots = re.findall(r'<img class="plot" src="(data:image/png;base64,[^"]+)"', html)
    assert len(plots) == 4  # AUC vs top-1, MI dynamics, deletion, insertion
    for uri in plots:
        assert Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size[0] > 300
    c = summary["auc_vs_top1"]["pca"]
    assert f"pca Pearson r = {c['pearson']:.3f}, Spearman ρ = {c['spearman']:.3f} (n = 3)" in html


def test_examples_mark_the_mutual_descriptors_and_escape_them(toy):
    html, _, _ = toy
    assert "Examples: large" in html  # the trained model of highest top-1
    examples = html.split('id="examples"', 1)[1]
    assert examples.count('<div class="example">') == 2 * 4  # both methods, every image of this small set
    assert '<mark class="mutual">&lt;b&gt;bold&lt;/b&gt;</mark>' in examples  # mutual on the square images
    assert '<mark class="mutual">a round outline</mark>' in examples
    assert "<b>bold</b>" not in html
    # The backdrop (the planted gap) is seen, in D_v, but never mutual.
    assert "a plain grey backdrop" in examples and '<mark class="mutual">a plain grey backdrop' not in examples
    assert '<span class="wrong">circle</span>' in examples  # a square predicted as a circle
    assert examples.index("concept 1") < examples.index("concept 0")  # importance order


def test_a_missing_image_is_a_placeholder_not_a_broken_img(toy):
    html, _, images = toy
    gone = images[2][0]
    assert f'<div class="overlay missing" title="{gone}">image missing</div>' in html
    assert "1 image file(s) could not be read" in html and gone in html.split('class="notes"', 1)[1]
    srcs = re.findall(r'<img [^>]*src="([^"]*)"', html)
    assert len(srcs) == 4 + 2 * 3  # the plots and the overlays of the three images left
    assert all(s.startswith("data:image/") for s in srcs)


def test_nothing_external(toy):
    html, _, _ = toy
    assert re.search(r"https?:", html) is None
    assert "<script" not in html
    assert all(v.startswith(("data:", "#")) for v in re.findall(r'(?:src|href)="([^"]*)"', html))


def test_the_overlay_tints_each_concept_its_colour(toy):
    html, _, _ = toy
    uri = re.search(r'<img class="overlay" src="data:image/(?:png|jpeg);base64,([^"]+)"', html).group(1)
    overlay = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB")).astype(int)
    assert overlay.shape[:2] == (160, 160)
    step = 160 // GRID  # a patch is 40 px; the red square fills patches 1-2 of each axis, concept 0
    original = np.array([200, 200, 200])
    colour = {c: np.array([int(PALETTE[c][j : j + 2], 16) for j in (1, 3, 5)]) for c in (0, 1)}
    object_px = overlay[2 * step, 2 * step]  # concept 0 over the red square
    backdrop_px = overlay[step // 2, step // 2]  # concept 1, the top row of grey
    plain_px = overlay[3 * step + step // 2, step // 2]  # no concept: untouched
    tolerance = 6  # JPEG, where it is the smaller encoding, is close but not exact on flat areas
    assert np.abs(plain_px - original).max() <= tolerance
    assert np.abs(backdrop_px - (0.55 * original + 0.45 * colour[1])).max() <= tolerance
    assert np.abs(object_px - (0.55 * np.array([220, 40, 40]) + 0.45 * colour[0])).max() <= tolerance


def test_examples_are_spread_over_classes():
    labels = ["a"] * 5 + ["b"] * 2 + ["c"] * 5
    picked = pick_examples([{"label": x} for x in labels], 6)
    assert picked == [0, 1, 5, 6, 7, 8]
    assert pick_examples([{"label": "a"}] * 3, 6) == [0, 1, 2]


def test_the_best_model_is_never_a_control():
    models = [{"model": "r", "control": True, "top1": 0.9}, {"model": "a", "control": False, "top1": 0.5}]
    assert best_model(models)["model"] == "a"
    assert best_model(models[:1])["model"] == "r"


def test_a_missing_curves_file_is_named(tmp_path):
    folders, _ = write_runs(tmp_path)
    summary = summarise("toy", folders)
    (Path(folders[1]) / "pca" / "curves.npz").unlink()
    with pytest.raises(MMConceptsError, match=r"small/pca/curves\.npz"):
        render_mutual_report(tmp_path / "report.html", summary)
    assert not (tmp_path / "report.html").exists()
