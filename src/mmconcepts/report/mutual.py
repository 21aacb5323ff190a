"""The mutual-knowledge report (being written: figures only)."""

from __future__ import annotations

import json

from mmconcepts.atomic import atomic_path


def render_mutual_report(out_path, summary: dict) -> None:
    with atomic_path(out_path) as tmp:
        tmp.write_text("<html><body><pre>" + json.dumps(summary["checks"], indent=1) + "</pre></body></html>")
