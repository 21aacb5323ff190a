"""The Jinja environment every report renders with (templates beside this file, on base.html.jinja2)."""

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
