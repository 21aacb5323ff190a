"""A JSON-lines output written batch by batch beside its final name, and taken over on restart.

``<out>.partial`` holds the rows written so far; ``<out>.partial.json`` what they
are made from (a fingerprint of the model, the settings and the row ids). A job
restarted after a kill (a SLURM time limit, a lost node) whose fingerprint matches
keeps the leading whole batches whose ids are the expected ones, cuts off the rest
(a batch the kill interrupted) and appends after them. Any other partial file is
started over. ``finish`` renames the rows into place: the output appears complete
or not at all. Neither file is a declared output, so Snakemake leaves them be.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from mmconcepts.atomic import read_json, write_json
from mmconcepts.errors import MMConceptsError


def fingerprint(ids: list[str], **settings) -> dict:
    """What the rows depend on: the settings, and the row ids in order (hashed)."""
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    return {**settings, "rows": len(ids), "ids_sha256": digest}


class PartialRows:
    def __init__(self, out: str | os.PathLike, ids: list[str], batch_size: int, settings: dict):
        self.out = Path(out)
        self.rows = self.out.with_name(self.out.name + ".partial")
        self.meta = self.out.with_name(self.out.name + ".partial.json")
        self.ids, self.batch_size = ids, batch_size
        self.fingerprint = fingerprint(ids, batch_size=batch_size, **settings)
        self._file = None

    def resume(self) -> int:
        """How many rows are already written (whole batches); the file is cut to them, or started over."""
        if not (self.rows.is_file() and self.meta.is_file() and self._same_fingerprint()):
            self.out.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.meta, self.fingerprint)
            self.rows.write_text("")
            return 0
        ends = [0]  # byte offset after each complete row whose id is the expected one
        with open(self.rows, "rb") as f:
            for line in f:
                if len(ends) > len(self.ids) or not line.endswith(b"\n") or _row_id(line) != self.ids[len(ends) - 1]:
                    break
                ends.append(ends[-1] + len(line))
        kept = len(ends) - 1
        # A batch is written whole (the split's last one may be short): drop a batch the kill cut.
        whole = kept if kept == len(self.ids) else kept // self.batch_size * self.batch_size
        os.truncate(self.rows, ends[whole])
        return whole

    def _same_fingerprint(self) -> bool:
        try:
            return read_json(self.meta) == self.fingerprint
        except MMConceptsError:  # a meta file cut by the kill: start over
            return False

    def write_batch(self, lines: list[str]) -> None:
        """Append one batch's rows and make them durable before the next batch starts."""
        if self._file is None:
            self._file = open(self.rows, "a")
        self._file.write("".join(lines))
        self._file.flush()
        os.fsync(self._file.fileno())

    def finish(self) -> None:
        """The rows become the output; the partial files are gone."""
        if self._file is not None:
            self._file.close()
        os.replace(self.rows, self.out)
        self.meta.unlink()


def _row_id(line: bytes):
    try:
        return json.loads(line)["id"]
    except (ValueError, KeyError, TypeError):
        return None
