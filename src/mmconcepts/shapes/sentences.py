"""Template text made a caption sentence: "an" before a vowel, a capital, a full stop."""

from __future__ import annotations

import re


def finish_sentence(text: str) -> str:
    sentence = re.sub(r"\ba (?=[aeiou])", "an ", text)  # "a orange" -> "an orange"
    return sentence[0].upper() + sentence[1:] + "."
