"""Telling a local model folder from a hub id, without importing torch."""

from pathlib import Path


def looks_local(path: str) -> bool:
    """A hub id is ``owner/name``; a path that starts like a path or exists is local."""
    return path.startswith((".", "/", "~", "resources")) or Path(path).exists()
