"""Reading Karpathy-format caption files (``dataset_coco.json`` and the shapes world's).

The format: ``{"images": [{"filepath", "filename", "split", "imgid", "sentences":
[{"raw", ...}]}]}``; an image lives at ``<image_root>/<filepath>/<filename>``.
Karpathy's ``restval`` images (30,504 of COCO val2014) are skipped by default, so
that ``train`` is the paper's 82,783 images; ``restval="train"`` counts them as train.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from mmconcepts.atomic import read_json
from mmconcepts.errors import MMConceptsError

SPLITS = ("train", "val", "test")
RESTVAL = ("skip", "train")


@dataclass(frozen=True)
class Sample:
    id: str
    path: Path
    split: str
    captions: tuple[str, ...]


def _sample(entry, image_root: Path, where: str) -> Sample:
    try:
        split = entry["split"]
        captions = tuple(s["raw"].strip() for s in entry["sentences"])
        path = image_root / entry.get("filepath", "") / entry["filename"]
        return Sample(id=str(entry["imgid"]), path=path, split=split, captions=captions)
    except KeyError as e:
        raise MMConceptsError(f"{where}: missing key {e.args[0]!r}") from None
    except (TypeError, AttributeError):
        raise MMConceptsError(f"{where}: not a Karpathy image entry") from None


def load_karpathy(
    captions_json, image_root, split: str | None = None, limit: int | None = None, restval: str = "skip"
) -> list[Sample]:
    """The samples of ``split`` (all splits when None) in file order, at most ``limit`` of them.

    ``restval``: ``skip`` leaves Karpathy's restval images out, ``train`` makes them train images.
    """
    captions_json = Path(captions_json)
    if split is not None and split not in SPLITS:
        raise MMConceptsError(f"{captions_json}: unknown split {split!r}; known: {', '.join(SPLITS)}")
    if restval not in RESTVAL:
        raise MMConceptsError(f"restval must be one of {RESTVAL}, not {restval!r}")
    data = read_json(captions_json, "captions file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise MMConceptsError(f"{captions_json}: missing key 'images' (not a Karpathy-format captions file)")
    samples = []
    for i, entry in enumerate(data["images"]):
        s = _sample(entry, Path(image_root), f"{captions_json}: images[{i}]")
        if s.split == "restval":
            if restval == "skip":
                continue
            s = dataclasses.replace(s, split="train")
        if split is None or s.split == split:
            samples.append(s)
    return samples if limit is None else samples[:limit]


def load_factors(world_dir) -> dict[str, dict]:
    """Ground-truth factors per image id of a generated world (the folder or its factors.json)."""
    path = Path(world_dir)
    if path.is_dir():
        path = path / "factors.json"
    data = read_json(path, "factors file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
        raise MMConceptsError(f"{path}: missing key 'images' (not a world's factors.json)")
    return data["images"]


def factors_of(world_dir, ids: list[str]) -> list[dict]:
    """The factors of each image id, in order; an id the factors file lacks is named."""
    table = load_factors(world_dir)
    missing = [i for i in ids if i not in table]
    if missing:
        raise MMConceptsError(
            f"{world_dir}: no factors for {len(missing)} of {len(ids)} image id(s), e.g. {missing[0]!r} "
            "(is it the factors file of the same world as the captions?)"
        )
    return [table[i] for i in ids]
