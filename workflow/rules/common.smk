# Wildcard constraints and the get_* helpers every rule file uses.
# Rules read config only through these helpers and pass values on via params:,
# so Snakemake reruns exactly what a config change affects.
import collections
import functools
import json
import re
import shlex

import mmconcepts
from mmconcepts.concepts.dictionary_methods import METHODS
from mmconcepts.concepts.shards import SHARD_PATTERN, shard_count, shard_name
from mmconcepts.config_checks import FAMILY_DIR, LMM_DIR, check_config, family_models, finetune_dir
from mmconcepts.data.karpathy import load_karpathy
from mmconcepts.models.paths import looks_local
from mmconcepts.shapes.world import world_params

check_config(config)

WORLD_DIR = f"resources/worlds/{config['world']['name']}"
CLIP_DIR = "resources/models/shapes-clip"
CODE_VERSION = mmconcepts.__version__
# Model inference (captions, extraction, embeddings, steering): one thread per job. The tiny models'
# matrices are too small for a second thread to pay (measured on the default run: train captions 46.5 s
# on one thread against 40 s on two, extraction 11 s either way, the same bytes out), so two one-thread
# jobs side by side beat one two-thread job after another. A profile's set-threads raises it.
INFERENCE_THREADS = 1


def one_of(names):
    """A wildcard pattern matching exactly these names (one that never matches when there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"

FINETUNES = {name: m["finetune"] for name, m in config["models"].items() if "finetune" in m}
# Shift analyses by their (original, fine-tuned) pair, which names their results folder.
SHIFTS = {(s["original"], s["finetuned"]): s for s in config["shifts"].values()}
# The train_clip_family outputs (one folder per width) that a mutual entry's CLIPs live in; the
# widths come from the family's settings with their defaults, not only from what config.yaml lists.
FAMILY_RUNS = sorted(
    {os.path.dirname(m["path"]) for m in family_models(config).values()}
    if any(e.get("family") for e in config["mutual"].values())
    else set()
)



# A model wildcard is a model entry's name, so results/shift/... and results/steering/...
# never look like a model's results.
wildcard_constraints:
    model=one_of(config["models"]),
    token=r"[^/]+",
    split=r"train|test",
    layer=r"\d+|final",
    method="|".join(METHODS),
    k=r"\d+",
    shard=SHARD_PATTERN,


def model_cfg(wildcards):
    return config["models"][wildcards.model]


def dataset_cfg(wildcards):
    return config["datasets"][model_cfg(wildcards)["dataset"]]


def model_layers(wildcards):
    return [str(layer) for layer in model_cfg(wildcards)["layers"]]


def k_values():
    k = config["decomposition"]["k"]
    return sorted(set(k if isinstance(k, list) else [k]))


def generated(path):
    """The rule output a resources/ path lives in, or the path itself when it is the user's."""
    for produced in (WORLD_DIR, LMM_DIR, CLIP_DIR, *map(finetune_dir, FINETUNES), *FAMILY_RUNS):
        if path == produced or path.startswith(f"{produced}/"):
            return produced
    return path


def dataset_inputs(wildcards):
    ds = dataset_cfg(wildcards)
    return sorted({generated(ds["captions"]), generated(ds.get("factors", ds["captions"]))})


def model_inputs(wildcards):
    path = model_cfg(wildcards)["path"]
    # A local folder is tracked (a missing one is named by Snakemake); a hub id is not a file.
    return [generated(path)] if looks_local(path) else []


def clip_inputs(wildcards):
    path = dataset_cfg(wildcards)["clip"].get("path")
    return [generated(path)] if path else []


def params_of_model(m):
    # trust: the flag that lets the checkpoint's own code run, only where its entry says so.
    trust = "--trust-remote-code" if m["trust_remote_code"] else ""
    return {**{key: m[key] for key in ("adapter", "path", "dtype", "device")}, "trust": trust}


def model_params(wildcards):
    return params_of_model(model_cfg(wildcards))


def data_args(wildcards):
    """The data set's command-line arguments, shell-quoted."""
    ds = dataset_cfg(wildcards)
    return shlex.join(["--gt", ds["captions"], "--images", ds["images"], "--restval", ds["restval"]])


def split_limit(wildcards):
    """At most this many images of the split; 0 means all."""
    return dataset_cfg(wildcards).get("limit", {}).get(wildcards.split, 0)


@functools.cache
def images_per_split(dataset):
    """Images per split, known before any job runs: the generated world's from its settings, a
    user's data set's from its captions file (read once per Snakemake start)."""
    ds = config["datasets"][dataset]
    if generated(ds["captions"]) == WORLD_DIR:
        world = world_params(**config["world"])
        return {split: world[f"n_{split}"] for split in ("train", "val", "test")}
    return collections.Counter(s.split for s in load_karpathy(ds["captions"], ds["images"], restval=ds["restval"]))


def split_images(dataset, split):
    """How many images of the split the workflow reads (after the data set's limit)."""
    n = images_per_split(dataset)[split]
    limit = config["datasets"][dataset].get("limit", {}).get(split, 0)
    return min(n, limit) if limit else n


def split_shards(wildcards):
    """The shard names of a model's split: about scale.shard_size images each."""
    count = shard_count(split_images(model_cfg(wildcards)["dataset"], wildcards.split), config["scale"]["shard_size"])
    return [shard_name(i, count) for i in range(count)]


def caption_shards(wildcards):
    return [f"results/{wildcards.model}/captions/{wildcards.split}/{shard}.jsonl" for shard in split_shards(wildcards)]


def feature_shards(wildcards):
    """A word's features are cut into as many shards as its split's captions."""
    return [f"results/{wildcards.model}/{wildcards.token}/feature_shards/{wildcards.split}/{shard}" for shard in split_shards(wildcards)]


def model_setting(key):
    def get(wildcards):
        return model_cfg(wildcards)[key]

    return get


def token_aliases(wildcards):
    return json.dumps(config["selection"]["aliases"].get(wildcards.token, []))


def report_focus(wildcards):
    layer = model_cfg(wildcards).get("report_layer")
    if layer is None:
        numeric = [int(x) for x in model_layers(wildcards) if x != "final"]
        layer = max(numeric) if numeric else "final"
    return json.dumps({"layer": str(layer), "k": k_values()[0]})


def report_runs(wildcards, kind):
    return [
        f"results/{wildcards.model}/{wildcards.token}/layer{layer}/{method}/k{k}/{kind}.json"
        for layer in model_layers(wildcards)
        for method, k in DICTIONARY_RUNS
    ]


def report_grounding(wildcards):
    return report_runs(wildcards, "grounding")


def report_metrics(wildcards):
    return report_runs(wildcards, "metrics")


# Every dictionary of a layer, in the order the evaluate job scores them.
DICTIONARY_RUNS = [(method, k) for method in config["decomposition"]["methods"] for k in k_values()]


def layer_runs(name):
    """The files ``name`` of every dictionary of the wildcards' layer (wildcards left for Snakemake)."""
    return [f"results/{{model}}/{{token}}/layer{{layer}}/{method}/k{k}/{name}" for method, k in DICTIONARY_RUNS]


def layer_run_headers(wildcards):
    keys = ("model", "token", "layer")
    return json.dumps([{**{key: wildcards[key] for key in keys}, "method": method, "k": k} for method, k in DICTIONARY_RUNS])


def run_header(wildcards):
    keys = ("model", "token", "layer", "method")
    return json.dumps({**{key: wildcards[key] for key in keys}, "k": int(wildcards.k)})


def report_header(wildcards):
    m = model_cfg(wildcards)
    return json.dumps(
        {
            "model": wildcards.model,
            "model_path": m["path"],
            "dataset": m["dataset"],
            "token": wildcards.token,
            "layers": model_layers(wildcards),
            "methods": config["decomposition"]["methods"],
            "ks": k_values(),
        }
    )


def train_store(wildcards):
    return feature_store(wildcards, "train", wildcards.layer)


def test_store(wildcards):
    return feature_store(wildcards, "test", wildcards.layer)


def max_iter_arg(wildcards):
    n = config["decomposition"].get("max_iter")
    return f"--max-iter {n}" if n else ""


def factors_arg(wildcards):
    path = dataset_cfg(wildcards).get("factors")
    return shlex.join(["--factors", path]) if path else ""


def probe_input(wildcards):
    """The layer's linear-probe file, where the data set has factors to probe for."""
    if "factors" not in dataset_cfg(wildcards):
        return []
    return f"results/{wildcards.model}/{wildcards.token}/probe/layer{wildcards.layer}.json"


def probe_arg(wildcards, input):
    return shlex.join(["--probe", input.probe]) if input.probe else ""


def bertscore_args(wildcards):
    b = config["evaluation"]["bertscore"]
    layers = f"--bertscore-layers {b['num_layers']}" if "num_layers" in b else ""
    return f"--bertscore-model {shlex.quote(b['model'])} {layers}"


def default_reports():
    concepts = [
        f"results/{name}/{token}/report.html"
        for name, m in config["models"].items()
        if m.get("enabled", True)
        for token in m["tokens"]
    ]
    shifts = [
        f"results/shift/{a}--{b}/{token}/report.html"
        for (a, b), s in SHIFTS.items()
        if s.get("enabled", True)
        for token in s["tokens"]
    ]
    steering = [f"results/steering/{name}/report.html" for name, s in config["steering"].items() if s.get("enabled", True)]
    mutual = [f"results/mutual/{name}/report.html" for name, m in config["mutual"].items() if m.get("enabled", True)]
    return concepts + shifts + steering + mutual


def clip_spec(wildcards):
    return json.dumps(dataset_cfg(wildcards)["clip"], sort_keys=True)


def feature_store(wildcards, split, layer):
    return f"results/{wildcards.model}/{wildcards.token}/features/{split}/layer{layer}.zarr"


def feature_stores(wildcards):
    return [feature_store(wildcards, wildcards.split, layer) for layer in model_layers(wildcards)]


def shard_feature_stores(wildcards):
    folder = f"results/{wildcards.model}/{wildcards.token}/feature_shards/{wildcards.split}/{wildcards.shard}"
    return [f"{folder}/layer{layer}.zarr" for layer in model_layers(wildcards)]


# -- fine-tunes and shift analyses ---------------------------------------------------------
def finetune_base(wildcards):
    return config["models"][FINETUNES[wildcards.finetuned]["from"]]["path"]


def finetune_inputs(wildcards):
    return {"world": WORLD_DIR, "base": generated(finetune_base(wildcards))}


def shift_cfg(wildcards):
    return SHIFTS[(wildcards.a, wildcards.b)]


def shift_side(role):
    """The --original/--finetuned argument of the shift command: name, store, samples, lens."""

    def get(wildcards):
        name = wildcards[role]
        return shlex.join(
            [
                name,
                f"results/{name}/{wildcards.token}/features/train/layer{wildcards.layer}.zarr",
                f"results/{name}/{wildcards.token}/samples/train.json",
                f"results/{name}/lens.npz",
            ]
        )

    return get


def shift_truth(wildcards):
    """The planted change's ground truth: the style file of a shapes-world fine-tune, and the factors."""
    style = FINETUNES.get(wildcards.b, {}).get("style")
    factors = config["datasets"][config["models"][wildcards.b]["dataset"]].get("factors")
    if style is None or factors is None:
        return ""
    return shlex.join(["--style", f"{WORLD_DIR}/styles/{style}/style.json", "--factors", factors])


def shift_truth_inputs(wildcards):
    return [WORLD_DIR] if shift_truth(wildcards) else []


def shift_setting(key):
    def get(wildcards):
        return shift_cfg(wildcards)[key]

    return get


def shift_runs(wildcards):
    s = shift_cfg(wildcards)
    return expand(
        "results/shift/{a}--{b}/{token}/layer{layer}/{method}/k{k}/shift.json",
        a=wildcards.a,
        b=wildcards.b,
        token=wildcards.token,
        layer=[str(x) for x in s["layers"]],
        method=s["method"],
        k=s["k"],
    )


# -- steering ------------------------------------------------------------------------------
def steer_cfg(wildcards):
    return config["steering"][wildcards.name]


def steer_model(wildcards):
    return config["models"][steer_cfg(wildcards)["model"]]


def steer_model_params(wildcards):
    return params_of_model(steer_model(wildcards))


def steer_model_inputs(wildcards):
    path = steer_model(wildcards)["path"]
    return [generated(path)] if looks_local(path) else []


def steer_dataset(wildcards):
    return config["datasets"][steer_model(wildcards)["dataset"]]


def steer_vqa(split):
    """The --vqa argument (the split's questions) of a VQA entry; nothing for captions."""

    def get(wildcards):
        if steer_cfg(wildcards)["task"] != "vqa":
            return ""
        return shlex.join(["--vqa", json.dumps(steer_dataset(wildcards)["vqa"][split], sort_keys=True)])

    return get


def steer_data_inputs(wildcards):
    ds = steer_dataset(wildcards)
    paths = {ds["captions"], ds.get("factors", ds["captions"])}
    if steer_cfg(wildcards)["task"] == "vqa":
        paths |= {v for split in ds["vqa"].values() for key, v in split.items() if key in ("questions", "annotations")}
    return sorted({generated(p) for p in paths})


def steer_data_args(wildcards):
    ds = steer_dataset(wildcards)
    factors = ["--factors", ds["factors"]] if "factors" in ds else []
    return shlex.join(["--gt", ds["captions"], "--images", ds["images"], "--restval", ds["restval"], *factors])


def steer_captions(wildcards):
    """The model's train captions, when a set is chosen from them."""
    s = steer_cfg(wildcards)
    if all(isinstance(spec, dict) and "answer" in spec for spec in (s["base"], s["target"])):
        return []
    return [f"results/{s['model']}/captions/train.jsonl"]


def steer_captions_arg(wildcards):
    return shlex.join(["--captions", *steer_captions(wildcards)]) if steer_captions(wildcards) else ""


def steer_setting(key):
    def get(wildcards):
        value = steer_cfg(wildcards)[key]
        return json.dumps(value) if isinstance(value, list) else value

    return get


def steer_set(role):
    def get(wildcards):
        return json.dumps(steer_cfg(wildcards)[role], sort_keys=True)

    return get


def steer_vector_input(wildcards):
    """What a layer's vector is made from: the chosen sets, or a dictionary's or a shift's result."""
    s = steer_cfg(wildcards)
    spec, layer = s.get("vector"), wildcards.layer
    if spec is None:
        return f"results/steering/{wildcards.name}/sets.json"
    if "concepts" in spec:
        return f"results/{s['model']}/{spec['token']}/layer{layer}/{spec['method']}/k{spec['k']}/dictionary.npz"
    shift = config["shifts"][spec["analysis"]]
    pair = f"{shift['original']}--{shift['finetuned']}"
    return f"results/shift/{pair}/{spec['token']}/layer{layer}/{shift['method']}/k{shift['k']}/shift_vectors.npz"


def steer_vector_source(wildcards):
    """The steering-vector command's --sets, or --dictionary with its pair, or --shift with its concept."""
    spec, path = steer_cfg(wildcards).get("vector"), steer_vector_input(wildcards)
    if spec is None:
        return shlex.join(["--sets", path])
    if "concepts" in spec:
        return shlex.join(["--dictionary", path, "--pair", *map(str, spec["concepts"])])
    return shlex.join(["--shift", path, "--concept", str(spec["shift"])])


def steer_ends(wildcards):
    """--source and --target of the steer command: the two answers, or the target word."""
    s = steer_cfg(wildcards)
    if "vector" in s:
        return shlex.join(["--target", s["word"]])
    target = next(iter(s["target"].values()))
    source = ["--source", str(next(iter(s["base"].values())))] if s["task"] == "vqa" else []
    return shlex.join([*source, "--target", str(target)])


def steer_header(wildcards):
    s = steer_cfg(wildcards)
    return json.dumps({"name": wildcards.name, "model": s["model"], "task": s["task"]})


def steer_runs(wildcards):
    layers = [str(x) for x in steer_cfg(wildcards)["layers"]]
    return expand("results/steering/{name}/layer{layer}/steer.json", name=wildcards.name, layer=layers)


# -- mutual knowledge ---------------------------------------------------------------------
MUTUAL_DATA_KEYS = ("images", "descriptors", "templates", "classes", "masks", "truth")


def mutual_models(entry):
    """The entry's CLIPs by name: its models, and every checkpoint of the tiny family if it asks."""
    m = config["mutual"][entry]
    return {**(family_models(config) if m.get("family") else {}), **m.get("models", {})}


def mutual_clip_names():
    """Every CLIP name of every mutual entry: the clip wildcard, so report.html is never a CLIP."""
    return sorted({clip for entry in config["mutual"] for clip in mutual_models(entry)})


def mutual_inputs(wildcards):
    spec = mutual_models(wildcards.entry).get(wildcards.clip)
    if spec is None:
        raise ValueError(f"mutual.{wildcards.entry}: no model {wildcards.clip!r} (models: {', '.join(mutual_models(wildcards.entry))})")
    return {"model": [generated(spec["path"])] if "path" in spec else [], "data": mutual_data_inputs(wildcards)}


def mutual_data_inputs(wildcards):
    m = config["mutual"][wildcards.entry]
    return sorted({generated(m[key]) for key in MUTUAL_DATA_KEYS if key in m})


def mutual_dataset(wildcards):
    m = config["mutual"][wildcards.entry]
    return json.dumps({key: m[key] for key in (*MUTUAL_DATA_KEYS, "per_class") if key in m}, sort_keys=True)


def mutual_model(wildcards):
    return json.dumps(mutual_models(wildcards.entry)[wildcards.clip], sort_keys=True)


def mutual_runs(wildcards):
    return [f"results/mutual/{wildcards.entry}/{clip}" for clip in mutual_models(wildcards.entry)]
