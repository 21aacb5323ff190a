"""Reading a classification set: ImageNet-style image folders, class names, templates, descriptors.

The layout is the one ImageNet val is usually kept in and the one the shapes world writes:
- ``images/<folder>/<image>``, one folder per class;
- a class-name file, JSON ``{folder: name}`` (``n01440764: tench``) or a list of names in the
  sorted order of the folders; without one, folder names are the class names;
- prompt templates, a JSON list of strings with one ``{}`` for the class name (default: eight of
  CLIP's ImageNet templates, ``CLIP_TEMPLATES``);
- a descriptor bank in Menon & Vondrick's format, JSON ``{class name: [descriptor, ...]}``. Its
  descriptors are pooled and deduplicated into one class-agnostic list D, as the paper does
  (4,229 strings for ImageNet).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmconcepts.atomic import read_json
from mmconcepts.errors import MMConceptsError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# Eight of CLIP's ImageNet templates, the default: the paper averages class embeddings over eight.
CLIP_TEMPLATES = (
    "a photo of a {}.",
    "itap of a {}.",
    "a drawing of a {}.",
    "a picture of a {}.",
    "a rendering of a {}.",
    "a close-up photo of a {}.",
    "a bright photo of a {}.",
    "a good photo of a {}.",
)


@dataclass(frozen=True)
class ClassificationSet:
    classes: tuple[str, ...]  # class names, in label order
    templates: tuple[str, ...]
    bank: dict[str, tuple[str, ...]]  # the descriptor file as given
    descriptors: tuple[str, ...]  # D: pooled, deduplicated, in order of first appearance
    images: tuple[tuple[Path, int], ...]  # (path, label)

    def class_prompts(self, label: int) -> list[str]:
        return [t.format(self.classes[label]) for t in self.templates]


def _folders(images: Path, names_file: Path | None) -> list[tuple[str, str]]:
    """(folder, class name) pairs in label order."""
    if not images.is_dir():
        raise MMConceptsError(f"{images}: image folder not found")
    present = sorted(p.name for p in images.iterdir() if p.is_dir())
    if names_file is None:
        if not present:
            raise MMConceptsError(f"{images}: no class folders")
        return [(f, f) for f in present]
    names = read_json(names_file, "class-name file")
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        if len(names) != len(present):
            raise MMConceptsError(f"{names_file}: {len(names)} class names for {len(present)} folders in {images}")
        pairs = list(zip(present, names))
    elif isinstance(names, dict) and all(isinstance(n, str) for n in names.values()):
        pairs = list(names.items())
    else:
        raise MMConceptsError(f"{names_file}: must be {{folder: class name}} or a list of class names")
    if not pairs:
        raise MMConceptsError(f"{names_file}: no classes")
    missing = [f for f, _ in pairs if f not in present]
    if missing:
        raise MMConceptsError(f"{names_file}: no folder in {images} for class(es) {missing[:5]}")
    names_only = [n for _, n in pairs]
    twice = sorted({n for n in names_only if names_only.count(n) > 1})
    if twice:
        raise MMConceptsError(f"{names_file}: class name(s) {twice} given to more than one folder")
    return pairs


def _templates(path: Path) -> tuple[str, ...]:
    templates = read_json(path, "template file")
    if not isinstance(templates, list) or not templates or not all(isinstance(t, str) for t in templates):
        raise MMConceptsError(f"{path}: must be a non-empty JSON list of template strings")
    bad = [t for t in templates if t.count("{}") != 1]
    if bad:
        raise MMConceptsError(f"{path}: template(s) {bad[:3]} must hold '{{}}' exactly once, for the class name")
    return tuple(templates)


def _bank(path: Path, classes: list[str]) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    bank = read_json(path, "descriptor bank")
    if not isinstance(bank, dict) or not all(isinstance(v, list) and all(isinstance(d, str) for d in v) for v in bank.values()):
        raise MMConceptsError(f"{path}: must be {{class name: [descriptor, ...]}} (Menon & Vondrick's format)")
    unknown = [c for c in bank if c not in classes]
    if unknown:
        raise MMConceptsError(f"{path}: descriptor bank names class(es) {unknown[:5]} that the set does not have")
    bank = {c: tuple(" ".join(d.split()) for d in ds) for c, ds in bank.items()}
    pooled = tuple(dict.fromkeys(d for ds in bank.values() for d in ds if d))
    if not pooled:
        raise MMConceptsError(f"{path}: the descriptor bank is empty")
    return bank, pooled


def load_classification(
    images: str | Path,
    descriptors: str | Path,
    templates: str | Path | None = None,
    classes: str | Path | None = None,
    per_class: int | None = None,
) -> ClassificationSet:
    """The set, each class's images in sorted order (the first ``per_class`` of them); every problem
    (a missing folder, a class without images, a bank naming a class the set lacks, an empty bank)
    is an error naming the file and the class."""
    images = Path(images)
    pairs = _folders(images, None if classes is None else Path(classes))
    names = [n for _, n in pairs]
    bank, pooled = _bank(Path(descriptors), names)
    listed = []
    for label, (folder, name) in enumerate(pairs):
        files = sorted(p for p in (images / folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise MMConceptsError(f"{images / folder}: class {name!r} has no images ({', '.join(IMAGE_SUFFIXES)})")
        listed += [(p, label) for p in files[:per_class]]
    templates = CLIP_TEMPLATES if templates is None else _templates(Path(templates))
    return ClassificationSet(tuple(names), templates, bank, pooled, tuple(listed))
