"""The Jinja environment every report renders with (templates beside this file, on base.html.jinja2),
and the one way a page is written: rendered, then renamed into place whole."""

from __future__ import annotations

from pathlib import Path

import jinja2


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def write_page(out_path, template: str, **context) -> None:
    """Render ``template`` with ``context`` and write it to ``out_path`` atomically."""
    from mmconcepts.atomic import atomic_path

    html = environment().get_template(template).render(**context)
    with atomic_path(out_path) as tmp:
        tmp.write_text(html, encoding="utf-8")
