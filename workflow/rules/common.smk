# Wildcard constraints and the get_* helpers every rule file uses.
# Rules read config only through these helpers and pass values on via params:,
# so Snakemake reruns exactly what a config change affects.
import json
import shlex

import mmconcepts
from mmconcepts.concepts.dictionary_methods import METHODS
from mmconcepts.config_checks import LMM_DIR, check_config
from mmconcepts.models.paths import looks_local

check_config(config)

WORLD_DIR = f"resources/worlds/{config['world']['name']}"
CLIP_DIR = "resources/models/shapes-clip"
CODE_VERSION = mmconcepts.__version__


wildcard_constraints:
    model=r"[^/]+",
    token=r"[^/]+",
    split=r"train|test",
    layer=r"\d+|final",
    method="|".join(METHODS),
    k=r"\d+",


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
    for produced in (WORLD_DIR, LMM_DIR, CLIP_DIR):
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


def model_params(wildcards):
    m = model_cfg(wildcards)
    return {key: m[key] for key in ("adapter", "path", "dtype", "device")}


def data_args(wildcards):
    """The data set's command-line arguments, shell-quoted."""
    ds = dataset_cfg(wildcards)
    return shlex.join(["--gt", ds["captions"], "--images", ds["images"], "--restval", ds["restval"]])


def split_limit(wildcards):
    """At most this many images of the split; 0 means all."""
    return dataset_cfg(wildcards).get("limit", {}).get(wildcards.split, 0)


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
    return expand(
        "results/{model}/{token}/layer{layer}/{method}/k{k}/{kind}.json",
        kind=kind,
        model=wildcards.model,
        token=wildcards.token,
        layer=model_layers(wildcards),
        method=config["decomposition"]["methods"],
        k=k_values(),
    )


def report_grounding(wildcards):
    return report_runs(wildcards, "grounding")


def report_metrics(wildcards):
    return report_runs(wildcards, "metrics")


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


def bertscore_args(wildcards):
    b = config["evaluation"]["bertscore"]
    layers = f"--bertscore-layers {b['num_layers']}" if "num_layers" in b else ""
    return f"--bertscore-model {shlex.quote(b['model'])} {layers}"


def default_reports():
    return [
        f"results/{name}/{token}/report.html"
        for name, m in config["models"].items()
        if m.get("enabled", True)
        for token in m["tokens"]
    ]


def clip_spec(wildcards):
    return json.dumps(dataset_cfg(wildcards)["clip"], sort_keys=True)


def feature_store(wildcards, split, layer):
    return f"results/{wildcards.model}/{wildcards.token}/features/{split}/layer{layer}.zarr"


def feature_stores(wildcards):
    return [feature_store(wildcards, wildcards.split, layer) for layer in model_layers(wildcards)]
