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
FAMILY_DIR = "resources/models/clip-family"  # where train_clip_family writes w<width>/w<width>-s<step>/
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
    models = config.get("models", {})
    for model in models.values():  # a fine-tune not built yet is as deep as its base
        base = models.get(model.get("finetune", {}).get("from"))
        if model["path"].rstrip("/") == path.rstrip("/") and base is not None and base is not model:
            return model_depth(base["path"], config)
    if looks_local(path):
        return _text_depth(Path(path).expanduser() / "config.json")
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(path, "config.json")
    return _text_depth(Path(cached)) if isinstance(cached, str) else None


def _check_depth(key: str, layers: list, model: dict, config: dict) -> None:
    """Block numbers beyond the model's depth (when known before any job) are an error naming ``key``."""
    depth = model_depth(model["path"], config)
    beyond = [str(x) for x in layers if str(x) != "final" and depth is not None and int(x) > depth]
    if beyond:
        raise MMConceptsError(
            f"{key}: {beyond} beyond the model's {depth} decoder blocks ({model['path']}); layers are blocks 1..depth or 'final'"
        )


def _check_layers(name: str, model: dict, config: dict) -> None:
    layers = [str(x) for x in model["layers"]]
    if len(set(layers)) != len(layers):
        raise MMConceptsError(f"models.{name}.layers: {model['layers']} repeats a layer")
    _check_depth(f"models.{name}.layers", layers, model, config)
    focus = model.get("report_layer")
    if focus is not None and str(focus) not in layers:
        raise MMConceptsError(f"models.{name}.report_layer: {focus!r} is not one of its layers {layers}")


def finetune_dir(name: str) -> str:
    """Where rule finetune_lmm writes the fine-tune of model entry ``name``."""
    return f"resources/models/{name}"


def _check_finetune(name: str, model: dict, config: dict, styles: list[str]) -> None:
    ft = model["finetune"]
    base = config["models"].get(ft["from"])
    if base is None or ft["from"] == name:
        raise MMConceptsError(
            f"models.{name}.finetune.from: {ft['from']!r} is not another model entry ({', '.join(config['models'])})"
        )
    if "finetune" in base:
        raise MMConceptsError(f"models.{name}.finetune.from: {ft['from']!r} is itself a fine-tune; fine-tune its base")
    if ft["style"] not in styles:
        raise MMConceptsError(
            f"models.{name}.finetune.style: unknown style {ft['style']!r}; the world writes: {', '.join(styles) or 'none'} (world.styles)"
        )
    if model["path"].rstrip("/") != finetune_dir(name):
        raise MMConceptsError(
            f"models.{name}.path: a fine-tune built by the workflow lives in {finetune_dir(name)}, not {model['path']}"
        )


def _check_shift(name: str, shift: dict, config: dict) -> None:
    from mmconcepts.concepts.dictionary_methods import METHODS

    models = config["models"]
    for role in ("original", "finetuned"):
        if shift[role] not in models:
            raise MMConceptsError(f"shifts.{name}.{role}: {shift[role]!r} is not a model entry ({', '.join(models)})")
    a, b = models[shift["original"]], models[shift["finetuned"]]
    if shift["original"] == shift["finetuned"]:
        raise MMConceptsError(f"shifts.{name}: original and finetuned are the same model {shift['original']!r}")
    if a["dataset"] != b["dataset"]:
        raise MMConceptsError(
            f"shifts.{name}: the two models caption different data sets ({a['dataset']!r}, {b['dataset']!r}); "
            "a shift compares the same samples"
        )
    for role, m in (("original", a), ("finetuned", b)):
        have = [str(x) for x in m["layers"]]
        missing = [str(x) for x in shift["layers"] if str(x) not in have]
        if missing:
            raise MMConceptsError(
                f"shifts.{name}.layers: {missing} not extracted for the {role} model {shift[role]!r} "
                f"(models.{shift[role]}.layers = {have})"
            )
    if shift["method"] not in METHODS:
        raise MMConceptsError(f"shifts.{name}.method: unknown method {shift['method']!r}; known: {', '.join(METHODS)}")


def _check_steering(name: str, entry: dict, config: dict) -> None:
    from mmconcepts.steering.specs import parse_set, parse_vector

    model = config["models"].get(entry["model"])
    if model is None:
        raise MMConceptsError(f"steering.{name}.model: {entry['model']!r} is not a model entry ({', '.join(config['models'])})")
    _check_depth(f"steering.{name}.layers", entry["layers"], model, config)
    if "vector" in entry:
        if "base" in entry or "target" in entry:
            raise MMConceptsError(f"steering.{name}: give either vector or base and target, not both")
        if entry["task"] != "captions" or "word" not in entry:
            raise MMConceptsError(f"steering.{name}: a vector entry steers captions (task: captions) toward a word: give word: W")
        _check_steering_source(name, entry, model, config, *parse_vector(entry["vector"], f"steering.{name}.vector"))
        return
    missing = [role for role in ("base", "target") if role not in entry]
    if missing:
        raise MMConceptsError(f"steering.{name}: no {' and '.join(missing)} set (or a vector: spec)")
    if "word" in entry:
        raise MMConceptsError(f"steering.{name}.word: only a vector entry names its word; a set entry's is its target")
    kinds = {role: parse_set(entry[role], f"steering.{name}.{role}")[0] for role in ("base", "target")}
    if entry["task"] == "vqa":
        if set(kinds.values()) != {"answer"}:
            raise MMConceptsError(f"steering.{name}: a vqa entry steers between two answers: base and target must be {{answer: X}}")
        vqa = config["datasets"][model["dataset"]].get("vqa", {})
        missing = [split for split in ("train", "val") if split not in vqa]
        if missing:
            raise MMConceptsError(f"steering.{name}: datasets.{model['dataset']}.vqa has no {missing} questions (train: sets, val: steering)")
    elif kinds["target"] != "word" or kinds["base"] == "answer":
        raise MMConceptsError(f"steering.{name}: a captions entry steers toward a word: target {{word: W}}, base {{word: W}} or before_eos")


def _check_steering_source(name: str, entry: dict, model: dict, config: dict, kind: str, spec: dict) -> None:
    """A vector read from a dictionary or a shift: the result must exist in the DAG, at the entry's layers.

    Any token, known method and K has a dictionary (the rules are generic); a layer must be extracted.
    """
    from mmconcepts.concepts.dictionary_methods import METHODS

    where = f"steering.{name}.vector"
    if kind == "concepts":
        if spec["method"] not in METHODS:
            raise MMConceptsError(f"{where}.method: unknown method {spec['method']!r}; known: {', '.join(METHODS)}")
        made, what = model["layers"], f"models.{entry['model']}.layers"
    else:
        shift = config["shifts"].get(spec["analysis"])
        if shift is None:
            raise MMConceptsError(f"{where}.analysis: {spec['analysis']!r} is not a shifts entry ({', '.join(config['shifts'])})")
        if shift["original"] != entry["model"]:
            raise MMConceptsError(f"{where}: shift {spec['analysis']!r} moves {shift['original']!r}, not this entry's model {entry['model']!r}")
        if spec["shift"] >= int(shift["k"]):
            raise MMConceptsError(f"{where}.shift: concept {spec['shift']} of a shift with k = {shift['k']}")
        made, what = shift["layers"], f"shifts.{spec['analysis']}.layers"
    absent = [layer for layer in entry["layers"] if str(layer) not in {str(x) for x in made}]
    if absent:
        raise MMConceptsError(f"steering.{name}.layers: {absent} not among {what} {made}: the vector is read from there")


def open_clip_names() -> set[str]:
    """The model names open_clip ships configs for, read from its package without importing it (slow)."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    folder = Path(spec.origin).parent / "model_configs" if spec and spec.origin else None
    return {p.stem for p in folder.glob("*.json")} if folder and folder.is_dir() else set()


def family_models(config: dict) -> dict[str, dict]:
    """Every checkpoint of the tiny CLIP family as a mutual model entry; step 0 is the random control."""
    from mmconcepts.shapes.clip_family_settings import family_params, model_name

    p = family_params(**config["clip_family"])
    return {
        model_name(w, s): {"path": f"{FAMILY_DIR}/w{w}/{model_name(w, s)}", "control": s == 0}
        for w in p["widths"]
        for s in sorted(p["checkpoints"])
    }


def _check_mutual(name: str, entry: dict, config: dict) -> None:
    from mmconcepts.mutual.settings import mutual_settings

    where = f"mutual.{name}"
    try:
        settings = mutual_settings(**entry.get("settings", {}))
    except MMConceptsError as e:
        raise MMConceptsError(f"{where}.settings: {str(e).removeprefix('mutual: ')}") from None
    if settings["foreground"] == "truth" and not entry.get("masks"):
        raise MMConceptsError(f"{where}.settings.foreground: truth takes the true object masks, and the entry names no masks folder (masks:)")
    models = dict(entry.get("models", {}))
    if entry.get("family"):
        models |= family_models(config)
    if not models:
        raise MMConceptsError(f"{where}: no models (list some under models:, or set family: true)")
    known = None
    for model, spec in entry.get("models", {}).items():
        if ("path" in spec) == ("model" in spec) or ("pretrained" in spec and "model" not in spec):
            raise MMConceptsError(f"{where}.models.{model}: give either path (a local open_clip folder) or model (+ pretrained)")
        if "model" in spec and not spec["model"].startswith("hf-hub:"):
            known = open_clip_names() if known is None else known
            if known and spec["model"] not in known:
                raise MMConceptsError(f"{where}.models.{model}.model: {spec['model']!r} is not an open_clip model name")
    if not entry.get("enabled", True):
        return
    for model, spec in entry.get("models", {}).items():
        path = spec.get("path")
        if path and not path.startswith("resources/") and not Path(path).expanduser().exists():
            raise MMConceptsError(f"{where}.models.{model}.path: {path} does not exist")
    for key in ("images", "descriptors", "templates", "classes", "masks", "truth"):
        path = entry.get(key)
        if path and not path.startswith("resources/") and not Path(path).expanduser().exists():
            raise MMConceptsError(f"{where}.{key}: {path} does not exist")


def check_config(config: dict) -> None:
    from mmconcepts.concepts.dictionary_methods import METHODS
    from mmconcepts.shapes.llava_settings import LMM_DEFAULTS
    from mmconcepts.shapes.world import world_params

    world = world_params(**config["world"])
    patch = config["train_lmm"].get("patch_size", LMM_DEFAULTS["patch_size"])
    if isinstance(patch, int) and patch > 0 and world["image_size"] % patch:
        raise MMConceptsError(
            f"world.image_size: {world['image_size']} is not a multiple of the tiny LLaVA's patch size "
            f"(train_lmm.patch_size = {patch})"
        )
    for name, model in config["models"].items():
        if name in ("shift", "steering", "logs"):
            raise MMConceptsError(f"models.{name}: the name is taken by a results folder of the workflow (results/{name}/)")
        path = model["path"]
        # resources/ is what the workflow builds; any other local path must be there already.
        if looks_local(path) and not path.startswith("resources/") and not Path(path).expanduser().exists():
            raise MMConceptsError(f"models.{name}.path: {path} does not exist (a local folder, or a hub id owner/name)")
        if model["dataset"] not in config["datasets"]:
            raise MMConceptsError(
                f"models.{name}.dataset: {model['dataset']!r} is not one of the datasets ({', '.join(config['datasets'])})"
            )
        if "finetune" in model:
            _check_finetune(name, model, config, world["styles"])
        _check_layers(name, model, config)
    pairs = {}
    for name, shift in config.get("shifts", {}).items():
        _check_shift(name, shift, config)
        pair = (shift["original"], shift["finetuned"])
        if pair in pairs:
            raise MMConceptsError(f"shifts.{name}: the pair {pair[0]}--{pair[1]} is also shifts.{pairs[pair]}; one entry per pair")
        pairs[pair] = name
    for name, entry in config.get("steering", {}).items():
        _check_steering(name, entry, config)
    for name, entry in config.get("mutual", {}).items():
        _check_mutual(name, entry, config)
    unknown = [m for m in config["decomposition"]["methods"] if m not in METHODS]
    if unknown:
        raise MMConceptsError(f"decomposition.methods: unknown method(s) {unknown}; known: {', '.join(METHODS)}")
