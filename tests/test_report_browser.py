"""The report as a reader sees it: rendered by headless Chromium (installed with apt when missing)."""

from __future__ import annotations

import os

import pytest
from browser import cannot_install, inspect_page
from conftest import REPORT
from report_fixture import report_inputs, shape_images

from mmconcepts.report.render import render_report

# Where Chromium can be neither found nor installed (no apt-get, not root) these tests skip with the
# reason; CI and a fresh Debian machine as root install it, and a failed install there is an error.
pytestmark = [pytest.mark.browser, pytest.mark.skipif(cannot_install() is not None, reason=str(cannot_install()))]


def test_report_renders_cleanly(tmp_path):
    images = shape_images(tmp_path / "images", 60)
    inputs = report_inputs(images, layers=("2", "4", "final"), ks=(10, 20), odd_word="<script>alert(1)</script>")
    os.remove(images[0])  # a missing image must show as a placeholder, not as a broken <img>
    render_report(tmp_path / "report.html", **inputs)

    page = inspect_page(tmp_path / "report.html", tmp_path / "report.png")

    assert page["card_count"] == 30
    assert page["images_total"] > 100
    assert page["images_broken"] == []
    assert page["console_errors"] == []
    assert page["external_requests"] == []
    assert page["scripts"] == 0  # the odd word stayed text
    shot = (tmp_path / "report.png").read_bytes()
    assert shot.startswith(b"\x89PNG") and len(shot) > 50_000


def test_inspect_page_sees_what_goes_wrong(tmp_path):
    """The helper is not blind: a broken image, a failed load and a script error all show."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<div class="concept-card"></div><img src="missing.png" alt="nope">'
        '<script>throw new Error("boom")</script></body></html>'
    )
    result = inspect_page(page)
    assert result["card_count"] == 1
    assert result["images_broken"] == ["nope"]
    assert any("boom" in e for e in result["console_errors"])
    assert any("missing.png" in e for e in result["console_errors"])
    assert result["scripts"] == 1


def test_the_workflows_own_report_renders_cleanly(micro_run, tmp_path):
    """The micro run's report (K = 4, cards for Semi-NMF at layer 2), as the workflow wrote it."""
    page = inspect_page(micro_run / REPORT, tmp_path / "micro.png")
    assert page["card_count"] == 4
    assert page["images_total"] >= 4 * 5 and page["images_broken"] == []
    assert page["console_errors"] == [] and page["external_requests"] == []


def test_the_shift_report_renders_cleanly(micro_run, tmp_path):
    """The micro run's shift report: one card per concept with samples, every thumbnail loaded."""
    import json

    run = json.loads((micro_run / "results/shift/shapes-llava--shapes-llava-places/circle/layerfinal/kmeans/k4/shift.json").read_text())
    live = [c for c in run["concepts"] if c["n_samples"]]
    page = inspect_page(micro_run / "results/shift/shapes-llava--shapes-llava-places/circle/report.html", tmp_path / "shift.png")
    assert page["card_count"] == len(live) >= 1
    assert page["images_total"] >= sum(len(c["mas_original"]) + len(c["mas_shifted"]) for c in live) + 1  # + the scatter plot
    assert page["images_broken"] == []
    assert page["console_errors"] == [] and page["external_requests"] == [] and page["scripts"] == 0


@pytest.mark.parametrize("name", ["shapes-yes-to-no", "shapes-to-red"])
def test_the_steering_reports_render_cleanly(micro_run, tmp_path, name):
    page = inspect_page(micro_run / f"results/steering/{name}/report.html", tmp_path / f"{name}.png")
    assert page["images_total"] >= 2 and page["images_broken"] == []  # the sweep plot and the examples' images
    assert page["console_errors"] == [] and page["external_requests"] == [] and page["scripts"] == 0


def test_the_mutual_report_renders_cleanly(tmp_path):
    """A synthetic mutual-knowledge report: plots and overlays load, the missing image is a placeholder."""
    from test_mutual_report import render_toy

    render_toy(tmp_path)  # four CLIPs × two methods, one image file deleted
    page = inspect_page(tmp_path / "report.html", tmp_path / "mutual.png")

    assert page["images_total"] == 4 + 2 * 3  # AUC vs top-1, MI, deletion, insertion; three overlays per method
    assert page["images_broken"] == []
    assert page["console_errors"] == []
    assert page["external_requests"] == []
    assert page["scripts"] == 0  # "<b>bold</b>" stayed text
    shot = (tmp_path / "mutual.png").read_bytes()
    assert shot.startswith(b"\x89PNG") and len(shot) > 50_000
