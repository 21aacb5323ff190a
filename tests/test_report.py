"""The HTML report without a browser: bold best values, placeholders, size, escaping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from report_fixture import report_inputs, shape_images

from mmconcepts.report.plots import layer_key
from mmconcepts.report.render import render_report
from mmconcepts.report.tables import COLUMNS, best_flags, metric_table


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[str]:
    return shape_images(tmp_path_factory.mktemp("images"), 40)


def render(tmp_path: Path, images: list[str], **kwargs) -> str:
    out = tmp_path / "report.html"
    render_report(out, **report_inputs(images, **kwargs))
    return out.read_text()


def test_best_flags_higher_lower_ties_and_gaps():
    assert best_flags([0.5, 0.7, None, 0.6], lower_is_better=False) == [False, True, False, False]
    assert best_flags([0.5, 0.7, None, 0.6], lower_is_better=True) == [True, False, False, False]
    # Equal as shown (3 decimals): both bold.
    assert best_flags([0.7001, 0.6999, 0.2], lower_is_better=False) == [True, True, False]
    # A lone value is not "best" of anything.
    assert best_flags([0.4, None], lower_is_better=False) == [False, False]


def test_metric_table_bolds_lowest_overlap_and_reconstruction():
    def metrics(score, overlap, reconstruction):
        return {
            "clipscore": {"top1": {"mean": score, "std": 0.01}},
            "overlap": overlap,
            "reconstruction": {"mean": reconstruction, "std": 0.02},
            "recovery": None,
        }

    table = metric_table({"snmf": metrics(0.8, 0.3, 0.5), "pca": metrics(0.7, 0.1, 0.2)})
    column = {path: j for j, (_, _, path, _) in enumerate(COLUMNS)}
    snmf, pca = (row["cells"] for row in table["rows"][:2])
    assert snmf[column[("clipscore", "top1")]]["bold"] and not pca[column[("clipscore", "top1")]]["bold"]
    assert pca[column[("overlap",)]]["bold"] and not snmf[column[("overlap",)]]["bold"]
    assert pca[column[("reconstruction",)]]["bold"] and not snmf[column[("reconstruction",)]]["bold"]
    assert pca[column[("recovery",)]]["mean"] == "—"
    assert [row["label"] for row in table["rows"]] == ["snmf", "pca"]  # no reference figures given, no reference rows


def test_metric_table_leaves_meaningless_figures_blank_and_unranked():
    """kmeans and simple have no reconstruction or sparsity, pca no sparsity: "—", and no best among the rest."""
    def metrics(reconstruction=None, sparsity=None):
        m = {"clipscore": {"top1": {"mean": 0.5, "std": 0.1}, "top_r": {"mean": 0.4, "std": 0.1}, "r": 5}}
        return m | ({} if reconstruction is None else {"reconstruction": {"mean": reconstruction}}) | (
            {} if sparsity is None else {"sparsity": {"mean": sparsity}}
        )

    table = metric_table({"snmf": metrics(0.4, 0.9), "pca": metrics(0.2), "kmeans": metrics(), "simple": metrics()})
    column = {path: j for j, (_, _, path, _) in enumerate(COLUMNS)}
    cells = {row["label"]: row["cells"] for row in table["rows"]}
    for method in ("kmeans", "simple"):
        for path in (("reconstruction",), ("sparsity",)):
            assert cells[method][column[path]] == {"mean": "—", "std": None, "bold": False, "span": 1}
    assert cells["pca"][column[("reconstruction",)]]["bold"] and not cells["snmf"][column[("reconstruction",)]]["bold"]
    assert cells["pca"][column[("sparsity",)]]["mean"] == "—"
    assert not cells["snmf"][column[("sparsity",)]]["bold"]  # the only method with the figure is best of nothing
    assert table["subs"][:4] == ["top-1", "top-5", "top-1", "top-5"]  # r as metrics.json says, not a fixed 3


def test_report_has_cards_tables_and_plots(tmp_path, images):
    html = render(tmp_path, images, layers=("final", "12", "4"), ks=(10, 20), focus_layer="12")
    assert html.count('class="concept-card"') == 30  # snmf at the focus layer, for every K
    assert html.count('class="metrics"') == 6  # one table per layer and K
    assert html.count('class="best"') > 0
    assert re.findall(r"<h3>Layer (\w+), K = 10", html) == ["4", "12", "final"]
    assert html.count('class="plot"') == 2  # across layers and across K
    assert 'id="recovery"' in html
    assert "random words" in html and "ground-truth captions" in html
    assert (tmp_path / "report.html").exists() and not list(tmp_path.glob(".report.html.tmp-*"))


def test_one_layer_one_k_and_no_factors(tmp_path, images):
    html = render(tmp_path, images, layers=("final",), ks=(5,), focus_layer="final", with_recovery=False)
    assert html.count('class="concept-card"') == 5
    assert 'class="plot"' not in html  # a line needs two points
    assert 'id="recovery"' not in html


def test_missing_image_gets_placeholder_and_note(tmp_path, images):
    gone = tmp_path / "gone.png"
    html = render(tmp_path, [str(gone), *images[1:]], layers=("4",), ks=(20,))
    assert html.count("image missing") >= 1
    assert f"could not be read and are shown as placeholders: {gone}" in html
    assert '<img class="thumb" src=""' not in html


def test_odd_words_and_captions_are_escaped(tmp_path, images):
    html = render(tmp_path, images, layers=("4",), ks=(10,), odd_word='<script>alert("x")</script><img src=x onerror=alert(1)>')
    assert "<script" not in html
    assert "onerror=alert(1)>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    # Even an escaping slip could neither run a script nor load anything.
    assert "default-src 'none'; img-src data:" in html


def test_report_stays_small_at_k20(tmp_path):
    # Noisy 224 px images are the worst case for thumbnail size; enough of them that few repeat.
    noisy = shape_images(tmp_path / "noisy", 200, noisy=True)
    size = len(render(tmp_path, noisy, layers=("2", "4", "final"), ks=(20,), focus_layer="4").encode())
    assert size < 5_000_000, f"{size / 1e6:.1f} MB"


def test_layer_order_puts_final_last():
    assert sorted(["final", "12", "4", "mid", "2"], key=layer_key) == ["2", "4", "12", "mid", "final"]


def test_report_carries_no_date_and_names_r(tmp_path, images):
    html = render(tmp_path, images, layers=("4",), ks=(10,), top_r=2)
    assert not re.search(r"\d{4}-\d{2}-\d{2}", html)
    assert "mmconcepts 0.1.0 · CoX-LMM" in html
    assert ">top-2</th>" in html and ">top-3</th>" not in html


def test_recovery_table_shows_the_linear_probe(tmp_path, images):
    inputs = report_inputs(images, layers=("4",), ks=(10,))
    snmf = next(e["metrics"]["recovery"] for e in inputs["entries"] if e["method"] == "snmf")
    render_report(tmp_path / "report.html", **inputs)
    html = (tmp_path / "report.html").read_text()
    section = html[html.index('id="recovery"') :]
    assert "<th>linear probe</th>" in section
    rows = re.findall(r"<tr><td>(\w+)</td><td class=\"left\">(\w+)</td>.*?<td>([^<]*)</td></tr>", section)
    assert len(rows) == len(snmf["table"])
    for (factor, value, probe), row in zip(rows, snmf["table"]):
        assert (factor, value) == (row["factor"], row["value"])
        assert probe == ("—" if row["probe_auroc"] is None else f"{row['probe_auroc']:.3f}")
    mean = re.search(r'<tr class="mean"><td colspan="3">mean</td><td>([^<]*)</td><td></td><td>([^<]*)</td></tr>', section)
    assert mean.groups() == (f"{snmf['mean']:.3f}", f"{snmf['probe_mean']:.3f}")
