"""The front page of a run: ``results/index.html``."""

from __future__ import annotations

from mmconcepts.cli.registry import OUT, arg, command


@command("index", "write the page that links every report", OUT, arg("--reports", nargs="+", required=True))
def index(a):
    from mmconcepts.report.index import render_index

    render_index(a.out, a.reports)
