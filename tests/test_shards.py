"""Shards, whole-chunk feature stores and resumable partial outputs, on hand-made data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from mmconcepts.concepts.feature_store import ChunkedRows, create_store, gather_features, read_features, shard_stores
from mmconcepts.concepts.shards import gather_captions, parse_shard, shard_count, shard_name, shard_rows
from mmconcepts.errors import MMConceptsError
from mmconcepts.partial_rows import PartialRows


# -- shard arithmetic -----------------------------------------------------------------------
@pytest.mark.parametrize("n_rows, count, batch", [(600, 3, 64), (200, 3, 64), (150, 1, 64), (7, 4, 2), (5, 5, 1), (1000, 7, 16)])
def test_shards_cover_every_row_once_in_whole_batches(n_rows, count, batch):
    parts = [shard_rows(n_rows, shard_name(i, count), batch) for i in range(count)]
    assert [r for part in parts for r in part] == list(range(n_rows))
    for part in parts:
        assert part.start % batch == 0  # every batch is one the unsharded run also makes
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= batch or min(sizes) == 0 and -(-n_rows // batch) < count


def test_a_shard_is_empty_only_when_there_are_fewer_batches_than_shards():
    assert [len(shard_rows(100, shard_name(i, 3), 64)) for i in range(3)] == [0, 64, 36]
    assert all(len(shard_rows(300, shard_name(i, 3), 64)) for i in range(3))


def test_shard_count_and_names():
    assert shard_count(6000, 10000) == 1 and shard_count(82783, 10000) == 9 and shard_count(0, 10) == 1
    assert parse_shard("2-of-3") == (1, 3) and shard_name(1, 3) == "2-of-3"
    for bad in ("0-of-3", "4-of-3", "2of3", "a-of-3"):
        with pytest.raises(MMConceptsError, match=bad):
            parse_shard(bad)


def test_gather_captions_keeps_shard_order_and_refuses_gaps(tmp_path):
    paths = []
    for i, rows in enumerate([["a", "b"], ["c"], ["d", "e"]]):
        path = tmp_path / f"{shard_name(i, 3)}.jsonl"
        path.write_text("".join(json.dumps({"id": r}) + "\n" for r in rows))
        paths.append(path)
    out = tmp_path / "train.jsonl"
    assert gather_captions(paths, out) == 5
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == list("abcde")
    with pytest.raises(MMConceptsError, match="are not 1-of-2, 2-of-2"):
        gather_captions([paths[0], paths[2]], tmp_path / "x.jsonl")
    paths[1].write_text('{"id": "c"}')  # a shard whose last row was cut
    with pytest.raises(MMConceptsError, match="incomplete"):
        gather_captions(paths, tmp_path / "y.jsonl")
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "y.jsonl").exists()


# -- whole chunks ---------------------------------------------------------------------------
class RecordingArray:
    """A real Zarr array that records the row ranges written to it."""

    def __init__(self, array):
        self.array, self.writes = array, []
        self.chunks, self.dtype, self.shape = array.chunks, array.dtype, array.shape

    def __setitem__(self, key, value):
        self.writes.append((key.start, key.stop))
        self.array[key] = value


def test_rows_are_written_in_whole_chunks_only(tmp_path):
    rows, chunk = 23, 5
    recorder = RecordingArray(create_store(tmp_path / "s.zarr", rows, 3, "float32", {}, chunk_rows=chunk))
    writer = ChunkedRows(recorder)
    data = np.arange(rows * 3, dtype=np.float32).reshape(rows, 3)
    for start in range(0, rows, 3):  # batches of 3 rows: never aligned with the 5-row chunks
        writer.append(data[start : start + 3])
    writer.close()
    for start, stop in recorder.writes:
        assert start % chunk == 0 and ((stop - start) % chunk == 0 or stop == rows), recorder.writes
    assert recorder.writes[-1][1] == rows
    np.testing.assert_array_equal(recorder.array[:], data)


def test_a_writer_given_too_few_rows_fails(tmp_path):
    writer = ChunkedRows(create_store(tmp_path / "s.zarr", 10, 2, "float32", {}))
    writer.append(np.zeros((4, 2)))
    with pytest.raises(MMConceptsError, match="4 rows written to an array of 10"):
        writer.close()


# -- gathering feature stores ---------------------------------------------------------------
META = {"model": "m", "adapter": "llava", "word": "dog", "position_kind": "predicting"}


def write_shards(root: Path, data: np.ndarray, count: int, batch: int, chunk_rows: int) -> list[Path]:
    folders = []
    for i in range(count):
        rows = shard_rows(len(data), shard_name(i, count), batch)
        folder = root / shard_name(i, count)
        meta = {**META, "sample_ids": [str(r) for r in rows], "positions": [r % 4 for r in rows]}
        hidden = data.shape[1] if len(rows) else 0
        with shard_stores({"2": folder / "layer2.zarr"}, rows, len(data), hidden, "float16", meta, chunk_rows) as writers:
            for start in range(rows.start, rows.stop, batch):
                writers["2"].append(data[start : min(start + batch, rows.stop)])
        folders.append(folder / "layer2.zarr")
    return folders


def store_bytes(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_gathered_shards_are_byte_identical_to_one_shard(tmp_path):
    data = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    one = gather_features(write_shards(tmp_path / "one", data, 1, 8, 7), tmp_path / "one.zarr", chunk_rows=16)
    # 9 shards of 7 batches: two are empty.
    many = gather_features(write_shards(tmp_path / "many", data, 9, 8, 7), tmp_path / "many.zarr", chunk_rows=16)
    assert one == many == 50
    assert store_bytes(tmp_path / "one.zarr") == store_bytes(tmp_path / "many.zarr")
    Z, attrs = read_features(tmp_path / "many.zarr")
    np.testing.assert_array_equal(Z, data.astype(np.float16).astype(np.float32))
    assert attrs["sample_ids"] == [str(r) for r in range(50)] and attrs["layer"] == "2"
    assert "rows" not in attrs and "of" not in attrs
    assert zarr.open_array(tmp_path / "many.zarr" / "features").chunks == (16, 6)


def test_gather_refuses_missing_or_mismatched_shards(tmp_path):
    data = np.ones((40, 4), dtype=np.float32)
    stores = write_shards(tmp_path, data, 3, 8, 16)
    with pytest.raises(MMConceptsError, match="expected rows from 8 of 40"):
        gather_features([stores[0], stores[2]], tmp_path / "out.zarr")
    with pytest.raises(MMConceptsError, match=r"rows 0\.\.24 of 40"):
        gather_features(stores[:2], tmp_path / "out.zarr")
    zarr.open_group(stores[1]).attrs["word"] = "cat"
    with pytest.raises(MMConceptsError, match="attributes differ"):
        gather_features(stores, tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists()


# -- partial outputs ------------------------------------------------------------------------
IDS = [str(i) for i in range(10)]


def partial(tmp_path, **settings) -> PartialRows:
    return PartialRows(tmp_path / "out.jsonl", IDS, 4, {"model": "m", **settings})


def rows_text(ids) -> str:
    return "".join(json.dumps({"id": i, "caption": f"c{i}"}) + "\n" for i in ids)


def test_a_restart_keeps_whole_batches_and_cuts_the_rest(tmp_path):
    first = partial(tmp_path)
    assert first.resume() == 0
    first.write_batch([rows_text(IDS[:4])])
    first.write_batch([rows_text(IDS[4:8])])
    with open(first.rows, "a") as f:  # the kill came while the third batch was written
        f.write(rows_text(IDS[8:9]) + '{"id": "9", "capt')
    again = partial(tmp_path)
    assert again.resume() == 8
    assert again.rows.read_text() == rows_text(IDS[:8])
    again.write_batch([rows_text(IDS[8:])])
    again.finish()
    assert (tmp_path / "out.jsonl").read_text() == rows_text(IDS)
    assert not again.rows.exists() and not again.meta.exists()


def test_a_partial_file_of_other_settings_or_rows_is_started_over(tmp_path):
    first = partial(tmp_path)
    first.resume()
    first.write_batch([rows_text(IDS[:4])])
    assert partial(tmp_path, model="other").resume() == 0
    assert first.rows.read_text() == ""
    first = partial(tmp_path)
    first.resume()
    first.write_batch([rows_text(["0", "1", "x", "3"])])  # not the rows it should hold
    assert partial(tmp_path).resume() == 0
    assert not (tmp_path / "out.jsonl").exists()


def test_a_finished_last_batch_may_be_short(tmp_path):
    first = partial(tmp_path)
    first.resume()
    for start in range(0, 10, 4):
        first.write_batch([rows_text(IDS[start : start + 4])])
    assert partial(tmp_path).resume() == 10
