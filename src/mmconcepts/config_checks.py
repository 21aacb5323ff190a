"""Checks of config.yaml that a JSON schema cannot express, run when the workflow starts.

Each message names the key, so a typo is found before any job runs.
"""

from __future__ import annotations

from mmconcepts.errors import MMConceptsError


def check_config(config: dict) -> None:
    from mmconcepts.worlds.shapes import world_params

    world_params(**config["world"])
    for name, model in config["models"].items():
        if model["dataset"] not in config["datasets"]:
            raise MMConceptsError(
                f"models.{name}.dataset: {model['dataset']!r} is not one of the datasets ({', '.join(config['datasets'])})"
            )
        if len(set(map(str, model["layers"]))) != len(model["layers"]):
            raise MMConceptsError(f"models.{name}.layers: {model['layers']} repeats a layer")
    aliases = config["selection"]["aliases"]
    if not all(isinstance(v, list) for v in aliases.values()):
        raise MMConceptsError("selection.aliases: every entry must be a list of words")
