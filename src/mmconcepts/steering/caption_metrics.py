"""What steering did to captions: target words, CIDEr-D, BLEU-4, degeneration, untouched factors.

CIDEr-D and BLEU-4 are pycocoevalcap's scorers (``Cider`` there is CIDEr-D: document
frequencies from the references, clipped n-gram counts, Gaussian length penalty with
sigma 6). pycocoevalcap's own PTB tokenizer needs Java, so captions are tokenised here
in Python instead (:func:`tokens`); on plain captions without quotes, apostrophes or
hyphens that gives the same words as the PTB tokenizer.
"""

from __future__ import annotations

import re

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from mmconcepts.errors import MMConceptsError
from mmconcepts.shapes.caption_quality import first_of


def tokens(text: str) -> list[str]:
    """Lower-case words and numbers, punctuation dropped.

    Unlike ``shapes.world.caption_tokens`` (``[a-z]+``) this keeps digits ("2 circles"), as the PTB
    tokenizer does; hyphenated words are split ("red-ish" → "red", "ish") where PTB keeps them whole.
    """
    return re.findall(r"[a-z0-9]+", text.lower())


def _check_ids(name: str, got: dict, want: dict, *, exact: bool = True) -> None:
    """``got`` must have the ids of ``want`` (and no others when ``exact``); the error names the first id that differs."""
    missing = sorted(set(want) - set(got), key=str)
    if missing:
        raise MMConceptsError(f"{name} has no entry for id {missing[0]!r} ({len(missing)} missing)")
    extra = sorted(set(got) - set(want), key=str)
    if exact and extra:
        raise MMConceptsError(f"{name} has id {extra[0]!r} that is not in the references ({len(extra)} extra)")


def _nonempty(name: str, items) -> int:
    if len(items) == 0:
        raise MMConceptsError(f"{name} is empty: a rate over no captions is undefined")
    return len(items)


def cider_bleu(candidates: dict[str, str], references: dict[str, list[str]]) -> dict:
    """Corpus CIDEr-D and BLEU-4 of one caption per id against that id's references.

    Both are corpus scores: CIDEr-D weights n-grams by how rare they are across all ids'
    references, so a single id scores 0 whatever it says, and scores are only comparable
    between runs over the same references. An empty candidate is passed on as is: it scores
    0 for its id and adds only reference length to BLEU's brevity penalty (a placeholder word
    would add a wrong guess to BLEU's precision instead).
    """
    _check_ids("candidates", candidates, references)
    if not references:
        raise MMConceptsError("no captions to score: references is empty")
    gts, res = {}, {}
    for key, refs in references.items():
        joined = [" ".join(tokens(r)) for r in refs]
        if not any(joined):
            raise MMConceptsError(f"id {key!r} has no reference with words: {refs!r}")
        gts[key] = joined
        res[key] = [" ".join(tokens(candidates[key]))]
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {"cider_d": float(cider), "bleu4": float(bleu[3])}


def target_word_rate(captions: list[str], words: set[str]) -> float:
    """Fraction of captions with at least one of ``words`` as a whole word ("reddish" is not "red")."""
    n = _nonempty("captions", captions)
    targets = {w.lower() for w in words}
    return sum(bool(targets.intersection(tokens(c))) for c in captions) / n


def degenerate(caption: str) -> bool:
    """Whether any word 3-gram occurs twice or more: the repetition loops that strong steering causes."""
    words = tokens(caption)
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return len(set(grams)) < len(grams)


def degeneration_rate(captions: list[str]) -> float:
    """Fraction of captions that are :func:`degenerate`."""
    n = _nonempty("captions", captions)
    return sum(degenerate(c) for c in captions) / n


def unchanged_fraction(before: dict[str, str], after: dict[str, str]) -> float:
    """Fraction of ids whose caption has the same tokens before and after steering."""
    _check_ids("after", after, before)
    n = _nonempty("before", before)
    return sum(tokens(before[k]) == tokens(after[k]) for k in before) / n


def factor_named(captions: list[str], factors: list[dict], factor: str, vocabulary) -> float:
    """Fraction of captions whose first word from ``vocabulary`` is the image's ``factor`` value.

    The main object comes first in every shapes-world template, so e.g. ``factor="shape"`` with
    ``SHAPES`` asks whether steering left the main shape named right.
    """
    n = _nonempty("captions", captions)
    if len(factors) != n:
        raise MMConceptsError(f"{n} captions but {len(factors)} factor records")
    for i, f in enumerate(factors):
        if factor not in f:
            raise MMConceptsError(f"factor {factor!r} missing from the factors of image {i}: {sorted(f)}")
    return sum(first_of(c, vocabulary) == f[factor] for c, f in zip(captions, factors)) / n


def caption_effect(
    base: dict[str, str],
    steered: dict[str, str],
    references: dict[str, list[str]],
    *,
    target_words: set[str],
    factors: dict[str, dict] | None = None,
    untargeted: dict[str, tuple] | None = None,
) -> dict:
    """Every caption metric for the same images captioned without (``base``) and with steering.

    ``untargeted`` maps each factor steering should leave alone to its vocabulary (e.g.
    ``{"shape": SHAPES}`` when steering colour); with ``factors`` (id → ground-truth factors) the
    result's ``factors_named`` says how often each is named right before and after.
    """
    _check_ids("base", base, references)
    _check_ids("steered", steered, references)
    if untargeted and factors is None:
        raise MMConceptsError(f"untargeted factors {sorted(untargeted)} need the images' factors")
    ids = list(references)
    before, after = [base[k] for k in ids], [steered[k] for k in ids]
    scores_base, scores = cider_bleu(base, references), cider_bleu(steered, references)
    out = {
        "n": len(ids),
        "target_rate_base": target_word_rate(before, target_words),
        "target_rate": target_word_rate(after, target_words),
        "cider_d_base": scores_base["cider_d"],
        "cider_d": scores["cider_d"],
        "bleu4_base": scores_base["bleu4"],
        "bleu4": scores["bleu4"],
        "unchanged": unchanged_fraction(base, steered),
        "degeneration_base": degeneration_rate(before),
        "degeneration": degeneration_rate(after),
    }
    if factors is not None:
        _check_ids("factors", factors, references, exact=False)
        records = [factors[k] for k in ids]
        out["factors_named"] = {
            name: {"base": factor_named(before, records, name, vocab), "steered": factor_named(after, records, name, vocab)}
            for name, vocab in (untargeted or {}).items()
        }
    return out
