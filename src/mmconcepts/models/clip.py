"""Loading any open_clip model: a pretrained tag, or a local folder of ours or a user's."""

from __future__ import annotations

from pathlib import Path

from mmconcepts.errors import MMConceptsError


def load_clip(spec: dict, device: str = "cpu"):
    """(model, preprocess, tokenizer) for ``{"name", "pretrained"}`` or ``{"name", "path"}``.

    A path is a folder holding ``open_clip_config.json`` and the weights, loaded
    with open_clip's own ``local-dir:`` scheme; ``name`` then only labels it.
    """
    import open_clip

    if not isinstance(spec, dict) or "name" not in spec or ("path" in spec) == ("pretrained" in spec):
        raise MMConceptsError(f"clip: {spec!r} needs a name and either a path (a local folder) or a pretrained tag")
    if "path" in spec:
        folder = Path(spec["path"])
        if not (folder / "open_clip_config.json").is_file():
            raise MMConceptsError(f"clip {spec['name']}: {folder / 'open_clip_config.json'} not found")
        name, pretrained = f"local-dir:{folder}", None
    else:
        name, pretrained = spec["name"], spec["pretrained"]
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained, device=device)
    except RuntimeError as e:  # open_clip's unknown model name or tag
        raise MMConceptsError(f"clip {spec['name']}: {e}") from None
    return model.eval(), preprocess, open_clip.get_tokenizer(name)
