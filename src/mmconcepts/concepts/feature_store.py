"""Feature stores: one Zarr group per (word, split, layer), rows = kept samples.

A store holds the array ``features`` (rows × hidden) and, as attributes, the
sample ids and read positions of its rows, the word and the layer. Rows are
written in whole chunks (``ChunkedRows``): a chunk is encoded once, never
rewritten batch by batch. An extraction shard's store also records which rows
of the selection it holds (``rows``, ``of``); ``gather_features`` joins the
shards' stores into the split's.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import numpy as np
import zarr

from mmconcepts.atomic import atomic_path
from mmconcepts.errors import MMConceptsError

# Snakemake drops a .snakemake_timestamp file into directory outputs; zarr 3 warns about it.
warnings.filterwarnings("ignore", message=".*not recognized as a component of a Zarr hierarchy.*")

CHUNK_ROWS = 1024
SHARD_KEYS = ("rows", "of")  # a shard store's attributes that the gathered store does not have


def create_store(path: Path, rows: int, hidden: int, dtype: str, attrs: dict, chunk_rows: int = CHUNK_ROWS) -> zarr.Array:
    group = zarr.open_group(path, mode="w")
    group.attrs.update(attrs)
    chunks = (max(1, min(chunk_rows, rows)), max(1, hidden))
    return group.create_array("features", shape=(rows, hidden), chunks=chunks, dtype=dtype)


class ChunkedRows:
    """Appends rows to an array, writing whole chunks only (the array's last chunk may be short)."""

    def __init__(self, array: zarr.Array):
        self.array, self.chunk = array, array.chunks[0]
        self.written, self.pending = 0, []

    def append(self, rows: np.ndarray) -> None:
        self.pending.append(np.asarray(rows, dtype=self.array.dtype))
        if sum(len(p) for p in self.pending) >= self.chunk:
            self._write(final=False)

    def close(self) -> None:
        self._write(final=True)
        if self.written != self.array.shape[0]:
            raise MMConceptsError(f"{self.written} rows written to an array of {self.array.shape[0]}")

    def _write(self, final: bool) -> None:
        if not self.pending:
            return
        block = np.concatenate(self.pending)
        n = len(block) if final else len(block) // self.chunk * self.chunk
        if n:
            self.array[self.written : self.written + n] = block[:n]
            self.written += n
        self.pending = [block[n:]] if n < len(block) else []


def read_features(path: str | Path) -> tuple[np.ndarray, dict]:
    """The feature matrix and the store's attributes; a store without them is rejected by name."""
    path = Path(path)
    try:
        group = zarr.open_group(path, mode="r")
        z = group["features"][:]
    except Exception as e:  # zarr raises several types for a missing or broken store
        raise MMConceptsError(f"{path}: not a complete feature store ({e.__class__.__name__}: {e})") from None
    attrs = dict(group.attrs)
    if len(attrs.get("sample_ids", [])) != z.shape[0]:
        raise MMConceptsError(f"{path}: {z.shape[0]} rows but {len(attrs.get('sample_ids', []))} sample ids")
    return np.asarray(z, dtype=np.float32), json.loads(json.dumps(attrs))


def _open_shard(path: Path) -> tuple[zarr.Array, dict]:
    try:
        group = zarr.open_group(path, mode="r")
        return group["features"], json.loads(json.dumps(dict(group.attrs)))
    except Exception as e:  # as in read_features
        raise MMConceptsError(f"{path}: not a complete shard store ({e.__class__.__name__}: {e})") from None


def gather_features(shard_stores: list[Path], out: Path, chunk_rows: int = CHUNK_ROWS) -> int:
    """Join one layer's shard stores, in shard order, into the store ``out``; its rows.

    The shards must hold consecutive rows from 0 to the selection's end, and agree on
    everything but their rows. An empty shard (a (0, 0) store) adds nothing.
    """
    shards = [(Path(p), *_open_shard(Path(p))) for p in shard_stores]
    total = shards[0][2].get("of")
    common = {k: v for k, v in shards[0][2].items() if k not in ("sample_ids", "positions", *SHARD_KEYS)}
    at, hidden, dtype = 0, None, None
    for path, array, attrs in shards:
        start, stop = attrs.get("rows", [None, None])
        if (start, attrs.get("of")) != (at, total) or stop - start != array.shape[0]:
            raise MMConceptsError(f"{path}: holds rows {attrs.get('rows')} of {attrs.get('of')}, expected rows from {at} of {total}")
        if {k: v for k, v in attrs.items() if k in common} != common:
            raise MMConceptsError(f"{path}: its attributes differ from those of {shards[0][0]}")
        if array.shape[0]:
            if hidden is not None and (array.shape[1], str(array.dtype)) != (hidden, dtype):
                raise MMConceptsError(f"{path}: {array.shape[1]} {array.dtype} columns, the other shards {hidden} {dtype}")
            hidden, dtype = array.shape[1], str(array.dtype)
        at = stop
    if at != total or hidden is None:
        raise MMConceptsError(f"the shards hold rows 0..{at} of {total}" if at != total else "every shard is empty")
    attrs = dict(shards[0][2])
    for key in SHARD_KEYS:
        attrs.pop(key)
    attrs["sample_ids"] = [i for _, _, a in shards for i in a["sample_ids"]]
    attrs["positions"] = [q for _, _, a in shards for q in a["positions"]]
    with atomic_path(out, is_dir=True) as tmp:
        writer = ChunkedRows(create_store(tmp, total, hidden, dtype, attrs, chunk_rows))
        for _, array, _ in shards:
            for start in range(0, array.shape[0], chunk_rows):
                writer.append(array[start : start + chunk_rows])
        writer.close()
    return total


@contextlib.contextmanager
def shard_stores(out_paths: dict[str, Path], rows: range, of: int, hidden: int, dtype: str, meta: dict, chunk_rows: int = CHUNK_ROWS):
    """Yields layer -> ``ChunkedRows`` of a new store per layer holding ``rows`` of ``of``;
    the stores appear at their names only when the block ends without error."""
    with contextlib.ExitStack() as stack:
        writers = {}
        for layer, path in out_paths.items():
            tmp = stack.enter_context(atomic_path(path, is_dir=True))
            attrs = {**meta, "layer": layer, "rows": [rows.start, rows.stop], "of": of}
            writers[layer] = ChunkedRows(create_store(tmp, len(rows), hidden if len(rows) else 0, dtype, attrs, chunk_rows))
        yield writers
        for writer in writers.values():
            writer.close()
