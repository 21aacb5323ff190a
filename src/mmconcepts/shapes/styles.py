"""Caption styles that plant one known change, for fine-tuning the tiny LLaVA.

Each style rewrites an image's captions so that one factor is told in words the
world's plain captions never use: ``places`` names the background first and in
more words ("In a grassy meadow, a small red circle on the left."), ``sentiment``
puts an adjective decided by the colour before it ("A cheerful yellow star ...").
A model fine-tuned on a style should carry those words; its *planted words* (the
style's words that no plain caption uses) are what a shift analysis must find.
"""

from __future__ import annotations

import re

import numpy as np

from mmconcepts.shapes.sentences import finish_sentence

# Per style: the factor it tells, its phrase for each value of that factor, and its templates.
# The phrases avoid colour, shape and size words, so the caption quality checks still read the main object.
PLACES = {
    "plain": "in a bare studio",
    "grass": "in a grassy meadow",
    "stripes": "in a room with striped wallpaper",
    "sky": "high up in the open sky",
}
MOODS = {
    "red": "angry",
    "green": "peaceful",
    "blue": "calm",
    "yellow": "cheerful",
    "purple": "gloomy",
    "orange": "lively",
}
STYLES = {
    "places": {
        "factor": "background",
        "phrases": PLACES,
        "templates": (
            "{phrase}, a {size} {colour} {shape} {position}{second}",
            "{phrase}, there is a {colour} {shape} {position}{second}",
            "{phrase}, a {size} {shape} coloured {colour}{second}",
        ),
    },
    "sentiment": {
        "factor": "colour",
        "phrases": MOODS,
        "templates": (
            "a {phrase} {colour} {shape} {position}{second}",
            "a {phrase} {size} {colour} {shape} {background}{second}",
            "{position} of the image is a {phrase} {colour} {shape}{second}",
        ),
    },
}
SECOND = " next to a {second_colour} {second_shape}"


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def planted_words(style: str, values, plain_vocabulary: set[str]) -> dict[str, list[str]]:
    """Per factor value of this world, the words of its phrase that no plain caption uses.

    Only words a concept could be named by count: 3+ letters and no stopword, as the lens asks.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    phrases = STYLES[style]["phrases"]
    nameable = {w for v in values for w in _words(phrases[v]) if len(w) >= 3 and w not in ENGLISH_STOP_WORDS}
    return {v: sorted((_words(phrases[v]) & nameable) - plain_vocabulary) for v in values}


def styled_captions(style: str, rng: np.random.Generator, words: dict, factors: dict, n: int) -> list[str]:
    """n captions of one image in ``style``; ``words`` are the plain captions' phrases of its factors."""
    spec = STYLES[style]
    templates = spec["templates"]
    phrase = spec["phrases"][factors[spec["factor"]]]
    second = SECOND.format(**factors) if factors["second_shape"] != "none" else ""
    order = np.concatenate([rng.permutation(len(templates)) for _ in range(-(-n // len(templates)))])[:n]
    out = []
    for i in order:
        out.append(finish_sentence(templates[i].format(**{**words, "phrase": phrase, "second": second})))
    return out


def style_rates(captions: list[str], factors: list[dict], planted: dict[str, list[str]], factor: str) -> dict:
    """How often captions carry a planted word at all, and the one their image's factor calls for."""
    any_words = {w for ws in planted.values() for w in ws}
    carried = right = 0
    for caption, f in zip(captions, factors):
        words = _words(caption)
        carried += bool(words & any_words)
        right += bool(planted.get(f[factor])) and set(planted[f[factor]]) <= words
    n = max(1, len(captions))
    return {"style_rate": carried / n, "style_right": right / n}
