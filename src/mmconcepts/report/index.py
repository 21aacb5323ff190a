"""``results/index.html``: one page linking every report a run built, titled as the reports are."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from mmconcepts.errors import MMConceptsError
from mmconcepts.report.templates import write_page

TITLE = re.compile(r"<title>(.*?)</title>", re.DOTALL)


def report_title(path: Path) -> str:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise MMConceptsError(f"{path}: cannot read the report ({e})") from None
    found = TITLE.search(text)
    return html.unescape(found.group(1)).strip() if found else path.parent.name


def render_index(out: str | Path, reports: list[str | Path]) -> None:
    """Links relative to the index, so the results folder can be moved or served as it is."""
    out = Path(out)
    entries = [
        {"href": Path(os.path.relpath(Path(r), out.parent)).as_posix(), "title": report_title(Path(r)), "path": str(r)}
        for r in sorted(map(str, reports))
    ]
    write_page(out, "index.html.jinja2", entries=entries)
