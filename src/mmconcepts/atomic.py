"""Write outputs under a temporary name and rename them into place at the end.

An interrupted job then leaves only a ``*.tmp-*`` sibling, never a half-written
output that a later run could mistake for a result.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from mmconcepts.errors import MMConceptsError


def _tmp_sibling(path: Path, is_dir: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.tmp-"
    if is_dir:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
    fd, name = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    os.close(fd)
    return Path(name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, is_dir: bool = False):
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    On any exception (including KeyboardInterrupt from SIGINT), up to the rename itself, the
    temporary path is removed and ``path`` is never left half-written.
    """
    path = Path(path)
    tmp = _tmp_sibling(path, is_dir)
    try:
        yield tmp
        # mkstemp/mkdtemp create 0600/0700; give the output the permissions open()/mkdir() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, (0o777 if is_dir else 0o666) & ~umask)
        _remove(path)
        os.replace(tmp, path)
    except BaseException:
        # Also while renaming into place: a SIGTERM there (an ExitStack of several outputs
        # commits them one by one) must not leave the temporary behind.
        _remove(tmp)
        raise


def write_json(path: str | os.PathLike, obj, *, indent: int | None = 1) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def write_npz(path: str | os.PathLike, **arrays) -> None:
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file handle: np.savez keeps the name as is
        np.savez(f, **arrays)


def read_json(path: str | os.PathLike, what: str = "file"):
    """The parsed file; a missing or broken one is an error naming the path (and ``what`` it should be)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MMConceptsError(f"{path}: {what} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MMConceptsError(f"{path}: not valid JSON ({e})") from None
