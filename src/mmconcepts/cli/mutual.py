"""Commands of mutual knowledge: train the tiny CLIP family, explain one CLIP on a set, report."""

from __future__ import annotations

import json

from mmconcepts.cli.registry import HEADER, OUT, PARAMS, THREADS, arg, command, json_arg
from mmconcepts.device import set_threads


@command(
    "train-clip-family",
    "train one width of the tiny CLIP family on a world, saving its checkpoints",
    OUT, PARAMS, THREADS,
    arg("--world", required=True, help="folder of a generated world"),
    arg("--width", type=int, required=True),
)  # fmt: skip
def train_clip_family(a):
    from mmconcepts.shapes.clip_family import train_width

    set_threads(a.threads)
    print(json.dumps(train_width(a.world, a.out, a.width, **a.params)))


@command(
    "mutual",
    "explain one CLIP's zero-shot decisions on a classification set by its encoders' mutual concepts",
    OUT, PARAMS, THREADS, HEADER,
    arg("--dataset", type=json_arg, required=True, help='{"images", "descriptors", "templates", "classes", "per_class", "masks", "truth"}'),
    arg("--model-name", required=True),
    arg("--model", type=json_arg, required=True, help='{"path": folder} or {"model": name, "pretrained": tag}'),
    arg("--device", default="auto", help="auto (CUDA when present), cpu or cuda"),
)  # fmt: skip
def mutual(a):
    from mmconcepts.mutual.run import run_mutual

    set_threads(a.threads)
    print(json.dumps(run_mutual(a.dataset, a.model_name, a.model, a.params, a.out, a.header, a.device)))


@command(
    "mutual-report",
    "compare an entry's CLIPs: summary.json and the HTML report",
    OUT,
    arg("--name", required=True, help="the mutual entry"),
    arg("--runs", nargs="+", required=True, help="the entry's results/mutual/<entry>/<clip> folders"),
    arg("--summary", required=True, help="where to write summary.json"),
)  # fmt: skip
def mutual_report(a):
    from mmconcepts.atomic import write_json
    from mmconcepts.mutual.summary import summarise
    from mmconcepts.report.mutual import render_mutual_report

    summary = summarise(a.name, a.runs)
    write_json(a.summary, summary)
    render_mutual_report(a.out, summary)
