"""Checks of config.yaml run when the workflow starts, before any job.

Snakemake parses ``--config 'decomposition={k: 30}'`` with YAML's base loader,
so every nested value arrives as a string; ``coerce_to_schema`` turns such
strings back into the numbers and booleans the schema asks for. ``check_config``
then checks what a JSON schema cannot express. Each message names the key.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mmconcepts.errors import MMConceptsError
from mmconcepts.models.paths import looks_local

LMM_DIR = "resources/models/shapes-llava"  # where the train_lmm rule writes the tiny LLaVA
_PY_TYPES = {"integer": (int,), "number": (int, float), "boolean": (bool,), "null": (type(None),)}


def _options(schema: dict) -> list[dict]:
    return schema.get("anyOf", []) or [schema]


def _accepts_string(schema: dict, value: str) -> bool:
    return any(o.get("type") == "string" and value in o.get("enum", [value]) for o in _options(schema))


def _scalar(value: str, schema: dict):
    if _accepts_string(schema, value):
        return value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    for option in _options(schema):
        types = _PY_TYPES.get(option.get("type"), ())
        if isinstance(parsed, types) and not (isinstance(parsed, bool) and bool not in types):
            return parsed
    return value


def coerce_to_schema(value, schema: dict):
    """``value`` with strings that the schema wants as numbers, booleans or null converted; in place for containers."""
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                value[key] = coerce_to_schema(item, sub)
        return value
    if isinstance(value, list):
        items = next((o["items"] for o in _options(schema) if o.get("type") == "array" and "items" in o), None)
        if items is not None:
            value[:] = [coerce_to_schema(item, items) for item in value]
        return value
    if isinstance(value, str):
        return _scalar(value, schema)
    return value


def coerce_config(config: dict, schema_path: str) -> None:
    with open(schema_path) as f:
        coerce_to_schema(config, yaml.safe_load(f))


def _text_depth(config_json: Path) -> int | None:
    """The number of decoder blocks a checkpoint's config.json declares, if it says."""
    try:
        cfg = json.loads(config_json.read_text())
    except (OSError, ValueError):
        return None
    for where in (cfg.get("text_config") or {}, cfg):
        if isinstance(where.get("num_hidden_layers"), int):
            return where["num_hidden_layers"]
    return None


def model_depth(path: str, config: dict) -> int | None:
    """Decoder blocks of a model entry, known before any job: the tiny LLaVA's from its
    training settings, a local folder's or a cached hub checkpoint's from its config.json;
    None when unknown until the model is loaded (a hub id not downloaded yet)."""
    from mmconcepts.shapes.llava_settings import LMM_DEFAULTS

    if path.rstrip("/") == LMM_DIR:
        return config["train_lmm"].get("text_layers", LMM_DEFAULTS["text_layers"])
    if looks_local(path):
        return _text_depth(Path(path).expanduser() / "config.json")
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(path, "config.json")
    return _text_depth(Path(cached)) if isinstance(cached, str) else None


def _check_layers(name: str, model: dict, config: dict) -> None:
    layers = [str(x) for x in model["layers"]]
    if len(set(layers)) != len(layers):
        raise MMConceptsError(f"models.{name}.layers: {model['layers']} repeats a layer")
    depth = model_depth(model["path"], config)
    beyond = [x for x in layers if x != "final" and depth is not None and int(x) > depth]
    if beyond:
        raise MMConceptsError(
            f"models.{name}.layers: {beyond} beyond the model's {depth} decoder blocks ({model['path']}); "
            "layers are blocks 1..depth or 'final'"
        )
    focus = model.get("report_layer")
    if focus is not None and str(focus) not in layers:
        raise MMConceptsError(f"models.{name}.report_layer: {focus!r} is not one of its layers {layers}")


def check_config(config: dict) -> None:
    from mmconcepts.concepts.dictionary_methods import METHODS
    from mmconcepts.shapes.world import world_params
    from mmconcepts.shapes.llava_settings import LMM_DEFAULTS

    world = world_params(**config["world"])
    patch = config["train_lmm"].get("patch_size", LMM_DEFAULTS["patch_size"])
    if isinstance(patch, int) and patch > 0 and world["image_size"] % patch:
        raise MMConceptsError(
            f"world.image_size: {world['image_size']} is not a multiple of the tiny LLaVA's patch size "
            f"(train_lmm.patch_size = {patch})"
        )
    for name, model in config["models"].items():
        path = model["path"]
        # resources/ is what the workflow builds; any other local path must be there already.
        if looks_local(path) and not path.startswith("resources/") and not Path(path).expanduser().exists():
            raise MMConceptsError(f"models.{name}.path: {path} does not exist (a local folder, or a hub id owner/name)")
        if model["dataset"] not in config["datasets"]:
            raise MMConceptsError(
                f"models.{name}.dataset: {model['dataset']!r} is not one of the datasets ({', '.join(config['datasets'])})"
            )
        _check_layers(name, model, config)
    unknown = [m for m in config["decomposition"]["methods"] if m not in METHODS]
    if unknown:
        raise MMConceptsError(f"decomposition.methods: unknown method(s) {unknown}; known: {', '.join(METHODS)}")
