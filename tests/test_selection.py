"""Selection and position definitions of DESIGN.md, on hand-made captions."""

from pathlib import Path

import pytest

from mmconcepts.errors import MMConceptsError
from mmconcepts.concepts.selection import first_token_at, require_enough, select_samples, word_pattern
from mmconcepts.data.karpathy import Sample


def row(id, tokens):
    """A captions.jsonl row whose tokens are the given strings (ids are their positions)."""
    spans, pos = [], 0
    for t in tokens:
        spans.append([pos, pos + len(t)])
        pos += len(t)
    return {"id": id, "image": f"{id}.png", "caption": "".join(tokens), "token_ids": list(range(len(tokens))), "spans": spans}


def gt(id, *captions):
    return Sample(id=id, path=Path(f"{id}.png"), split="train", captions=tuple(captions))


@pytest.mark.parametrize(
    "text, found",
    [("A dog runs", True), ("a DOG.", True), ("dog", True), ("(dog)", True), ("a hotdog", False), ("dogma", False), ("dogs", False)],
)
def test_whole_word_case_and_punctuation(text, found):
    assert bool(word_pattern("dog").search(text)) is found


def test_aliases_extend_the_word():
    assert word_pattern("dog", ["dogs"]).search("two dogs").group(0) == "dogs"


def test_first_token_at_maps_a_character_to_its_token():
    spans = [[0, 1], [1, 6], [6, 10]]
    assert [first_token_at(spans, c) for c in (0, 1, 5, 6, 9)] == [0, 1, 1, 2, 2]


def test_positions_predicting_and_token():
    captions = [row("1", ["a", " small", " dog", " runs", " after", " a", " dog"])]
    truth = {"1": gt("1", "a dog runs")}
    pred = select_samples(captions, truth, "dog", position="predicting")["samples"][0]
    tok = select_samples(captions, truth, "dog", position="token")["samples"][0]
    # The first occurrence is token 2 (" dog"); predicting reads the token before it.
    assert (tok["token_index"], tok["position"]) == (2, 2)
    assert (pred["token_index"], pred["position"]) == (2, 1)
    # Teacher forcing only needs the tokens up to the word.
    assert pred["token_ids"] == [0, 1, 2]


def test_word_at_the_first_generated_token_is_read_from_the_prompt_end():
    s = select_samples([row("1", ["dog", " on", " grass"])], {"1": gt("1", "a dog")}, "dog")["samples"][0]
    assert (s["token_index"], s["position"]) == (0, -1)


def test_sub_token_word_maps_to_its_first_piece():
    s = select_samples([row("1", ["a", " ele", "phant"])], {"1": gt("1", "an elephant")}, "elephant")["samples"][0]
    assert s["token_index"] == 1


def test_ground_truth_match_any_or_first_and_counts():
    captions = [row("1", ["a", " dog"]), row("2", ["a", " dog"]), row("3", ["a", " cat"]), {"id": "4", "image": "4.png", "error": "x"}]
    truth = {
        "1": gt("1", "a dog", "an animal"),
        "2": gt("2", "an animal", "a dog"),
        "3": gt("3", "a dog"),
    }
    any_ = select_samples(captions, truth, "dog", gt_match="any")
    first = select_samples(captions, truth, "dog", gt_match="first")
    assert [s["id"] for s in any_["samples"]] == ["1", "2"]
    assert [s["id"] for s in first["samples"]] == ["1"]
    assert any_["counts"] == {"images_seen": 3, "in_prediction": 2, "in_ground_truth": 3, "kept": 2, "skipped_images": 1}


def test_no_samples_names_the_word_and_counts():
    sel = select_samples([row("1", ["a", " cat"])], {"1": gt("1", "a cat")}, "zebra")
    with pytest.raises(MMConceptsError, match=r"'zebra': no train samples kept \(images seen 1, word in prediction 0"):
        require_enough(sel, 20, "train")


def test_fewer_samples_than_k_names_word_counts_and_k():
    sel = select_samples([row("1", ["a", " cat"]), row("2", ["a", " cat"])], {"1": gt("1", "cat"), "2": gt("2", "cat")}, "cat")
    require_enough(sel, 2, "train")
    with pytest.raises(MMConceptsError, match=r"'cat': only 2 train samples kept \(images seen 2, .*fewer than K = 3"):
        require_enough(sel, 3, "train")


def test_unknown_image_id_is_named():
    with pytest.raises(MMConceptsError, match="'9'"):
        select_samples([row("9", ["a"])], {}, "dog")


def test_spans_that_miss_the_word_name_the_image_and_caption():
    broken = row("7", ["a", " dog"])
    broken["spans"] = [[0, 1]]  # a captions file whose spans stop before the word
    with pytest.raises(MMConceptsError, match=r"image '7': caption 'a dog': character 2 is not covered"):
        select_samples([broken], {"7": gt("7", "a dog")}, "dog")
