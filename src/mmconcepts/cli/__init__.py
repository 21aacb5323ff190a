"""``python -m mmconcepts <stage> ...``: the one entry point every Snakemake rule calls.

Each stage takes all its settings as arguments (the rules pass them from
``params:``, so Snakemake notices when one changes) and writes its outputs
atomically. Bad input ends with one line naming the file, key or word.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from mmconcepts.errors import MMConceptsError

COMMANDS = {}


def command(name: str, help: str):
    def register(fn):
        COMMANDS[name] = (fn, help)
        return fn

    return register


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from None


def _dataset(args, split=None, limit=None):
    from mmconcepts.worlds.karpathy import load_karpathy

    return load_karpathy(args.gt, args.images, split=split, limit=limit)


def _threads(n: int | None):
    if n:
        import torch

        torch.set_num_threads(n)


# -- world and tiny models ---------------------------------------------------------------
@command("world", "generate the shapes world")
def cmd_world(a):
    from mmconcepts.worlds.shapes import generate_world

    print(json.dumps(generate_world(a.out, **a.params)))


@command("train-lmm", "train the tiny LLaVA on a world")
def cmd_train_lmm(a):
    from mmconcepts.models.tiny_llava import train_tiny_llava

    _threads(a.threads)
    print(json.dumps(train_tiny_llava(a.world, a.out, **a.params)))


@command("train-clip", "train the tiny CLIP on a world")
def cmd_train_clip(a):
    from mmconcepts.models.tiny_clip import train_tiny_clip

    _threads(a.threads)
    print(json.dumps(train_tiny_clip(a.world, a.out, **a.params)))


# -- the concept pipeline ----------------------------------------------------------------
def _adapter(a):
    from mmconcepts.models.registry import load_adapter

    _threads(a.threads)
    return load_adapter(a.adapter, a.model, dtype=a.dtype, device=a.device)


@command("captions", "caption every image of a split")
def cmd_captions(a):
    from mmconcepts.captioning import caption_split

    samples = _dataset(a, split=a.split, limit=a.limit or None)
    if not samples:
        raise MMConceptsError(f"{a.gt}: no images in split {a.split!r}")
    counts = caption_split(
        _adapter(a), samples, a.out, instruction=a.instruction, batch_size=a.batch_size, max_new_tokens=a.max_new_tokens
    )
    print(json.dumps(counts))


@command("select", "keep the samples whose generated and ground-truth captions contain the word")
def cmd_select(a):
    from mmconcepts.atomic import write_json
    from mmconcepts.captioning import read_captions
    from mmconcepts.selection import require_enough, select_samples

    gt = {s.id: s for s in _dataset(a, split=a.split)}
    sel = select_samples(
        read_captions(a.captions), gt, a.word, aliases=a.aliases, gt_match=a.gt_match, position=a.position
    )
    require_enough(sel, 1, a.split)
    write_json(a.out, {"split": a.split, **sel}, indent=None)
    print(json.dumps(sel["counts"]))


@command("lens", "export the model's final norm, unembedding and whole-word table")
def cmd_lens(a):
    from mmconcepts.lens import caption_vocabulary, export_lens

    vocab = caption_vocabulary([c for s in _dataset(a) for c in s.captions])
    print(json.dumps(export_lens(_adapter(a), vocab, a.out)))


@command("extract", "hidden states at the word's position, every layer from one pass")
def cmd_extract(a):
    from mmconcepts.atomic import read_json
    from mmconcepts.extraction import extract_features

    if len(a.layers) != len(a.out):
        raise MMConceptsError(f"{len(a.layers)} layers but {len(a.out)} output stores")
    extract_features(
        _adapter(a),
        read_json(a.samples),
        {L: Path(o) for L, o in zip(a.layers, a.out)},
        instruction=a.instruction,
        batch_size=a.batch_size,
        dtype=a.store_dtype,
        attrs={"model": a.model, "adapter": a.adapter},
    )


@command("decompose", "learn the concept dictionary on the train features")
def cmd_decompose(a):
    from mmconcepts.atomic import read_json
    from mmconcepts.decomposition import make_decomposer, save_dictionary
    from mmconcepts.extraction import read_features
    from mmconcepts.selection import require_enough

    require_enough(read_json(a.samples), a.k, "train")
    Z, attrs = read_features(a.features)
    _threads(a.threads)
    est = make_decomposer(a.method, a.k, alpha=a.alpha, random_state=a.seed, max_iter=a.max_iter)
    V = est.fit_transform(Z)
    params = {"k": a.k, "alpha": a.alpha, "seed": a.seed, "max_iter": a.max_iter, "layer": attrs["layer"]}
    save_dictionary(a.out, est, method=a.method, train_activations=V, sample_ids=attrs["sample_ids"], params=params)


@command("embed", "CLIP image embeddings of the kept test images, and the ground-truth captions' CLIPScore")
def cmd_embed(a):
    import numpy as np

    from mmconcepts.atomic import atomic_path, read_json
    from mmconcepts.metrics import ClipScorer, clip_score
    from mmconcepts.models.tiny_clip import load_clip

    samples = read_json(a.samples)["samples"]
    gt = {s.id: s for s in _dataset(a)}
    _threads(a.threads)
    scorer = ClipScorer(*load_clip(a.clip))
    image_emb = scorer.encode_images([s["image"] for s in samples])
    gt_scores = np.array(
        [clip_score(image_emb[i : i + 1], scorer.encode_texts(list(gt[s["id"]].captions))).mean() for i, s in enumerate(samples)]
    )
    with atomic_path(a.out) as tmp, open(tmp, "wb") as f:
        np.savez(f, ids=np.array([s["id"] for s in samples]), image_emb=image_emb, gt_clipscore=gt_scores)


@command("ground", "ground every concept in images and words")
def cmd_ground(a):
    from mmconcepts.atomic import read_json, write_json
    from mmconcepts.decomposition import load_dictionary
    from mmconcepts.extraction import read_features
    from mmconcepts.grounding import ground
    from mmconcepts.lens import Lens

    d = load_dictionary(a.dictionary)
    train = {s["id"]: s for s in read_json(a.train_samples)["samples"]}
    test = {s["id"]: s for s in read_json(a.test_samples)["samples"]}
    Z, attrs = read_features(a.test_features)
    out = ground(
        d,
        Lens(a.lens),
        [train[i] for i in d.sample_ids],
        [test[i] for i in attrs["sample_ids"]],
        Z,
        n_mas=a.n_mas,
        n_words=a.n_words,
        top_r=a.top_r,
        seed=a.seed,
        header=a.header,
    )
    write_json(a.out, out, indent=None)


@command("evaluate", "score a dictionary on the test split")
def cmd_evaluate(a):
    import numpy as np

    from mmconcepts.atomic import read_json, write_json
    from mmconcepts.decomposition import load_dictionary
    from mmconcepts.evaluation import evaluate
    from mmconcepts.extraction import read_features
    from mmconcepts.metrics import BertScorer, ClipScorer
    from mmconcepts.models.tiny_clip import load_clip

    Z, attrs = read_features(a.test_features)
    with np.load(a.embeddings, allow_pickle=False) as f:
        emb = {k: f[k] for k in f.files}
    if emb["ids"].tolist() != attrs["sample_ids"]:
        raise MMConceptsError(f"{a.embeddings} and {a.test_features} list different test samples")
    gt = {s.id: s for s in _dataset(a)}
    factors = None
    if a.factors:
        from mmconcepts.worlds.karpathy import load_factors

        table = load_factors(a.factors)
        factors = [table[i] for i in attrs["sample_ids"]]
    _threads(a.threads)
    clip = ClipScorer(*load_clip(a.clip))
    metrics = evaluate(
        load_dictionary(a.dictionary),
        read_json(a.grounding),
        Z,
        image_emb=emb["image_emb"],
        gt_clipscore=emb["gt_clipscore"],
        encode_texts=clip.encode_texts,
        bert=BertScorer(a.bertscore_model, num_layers=a.bertscore_layers),
        references=[list(gt[i].captions) for i in attrs["sample_ids"]],
        factors=factors,
        top_r=a.top_r,
        header=a.header,
    )
    write_json(a.out, metrics)


@command("report", "write the HTML report of one model and word")
def cmd_report(a):
    import datetime

    from mmconcepts import __version__
    from mmconcepts.atomic import read_json
    from mmconcepts.report.render import render_report

    if len(a.grounding) != len(a.metrics):
        raise MMConceptsError(f"{len(a.grounding)} grounding files but {len(a.metrics)} metrics files")
    entries = []
    for g, m in zip(a.grounding, a.metrics):
        metrics = read_json(m)
        entries.append(
            {"layer": metrics["layer"], "method": metrics["method"], "k": metrics["k"], "grounding": read_json(g), "metrics": metrics}
        )
    header = {
        **a.header,
        "counts": {"train": read_json(a.train_samples)["counts"], "test": read_json(a.test_samples)["counts"]},
        "version": __version__,
        "date": datetime.date.today().isoformat(),
    }
    render_report(a.out, header=header, entries=entries, focus=a.focus)


# -- argument parsing --------------------------------------------------------------------
def _model_args(p):
    p.add_argument("--adapter", required=True)
    p.add_argument("--model", required=True, help="local folder or hub id")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--device", default="auto")


def _data_args(p):
    p.add_argument("--gt", required=True, help="Karpathy-format captions JSON")
    p.add_argument("--images", required=True, help="root folder the captions' filepath/filename are under")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmconcepts", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ps = {}
    for name, (fn, help) in COMMANDS.items():
        ps[name] = p = sub.add_parser(name, help=help)
        p.set_defaults(fn=fn)
        p.add_argument("--out", required=True, nargs="+" if name == "extract" else None)
        p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    for name in ("world", "train-lmm", "train-clip"):
        ps[name].add_argument("--params", type=_json, default={}, help="JSON object of settings")
    for name in ("train-lmm", "train-clip"):
        ps[name].add_argument("--world", required=True)
    for name in ("captions", "lens", "extract"):
        _model_args(ps[name])
    for name in ("captions", "select", "lens", "embed", "evaluate"):
        _data_args(ps[name])
    for name in ("captions", "extract"):
        ps[name].add_argument("--instruction", required=True)
        ps[name].add_argument("--batch-size", type=int, default=16)
    for name in ("embed", "evaluate"):
        ps[name].add_argument("--clip", type=_json, required=True, help='e.g. {"name": "ViT-B-32", "pretrained": "openai"}')
    for name in ("ground", "evaluate", "report"):
        ps[name].add_argument("--header", type=_json, default={}, help="fields copied into the output")
    for name in ("ground", "evaluate"):
        ps[name].add_argument("--dictionary", required=True)
        ps[name].add_argument("--test-features", required=True)
        ps[name].add_argument("--top-r", type=int, default=3)

    p = ps["captions"]
    p.add_argument("--split", required=True)
    p.add_argument("--limit", type=int, default=0, help="at most this many images; 0: all")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p = ps["select"]
    p.add_argument("--captions", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--word", required=True)
    p.add_argument("--aliases", type=_json, default=[], help="JSON list of other forms of the word")
    p.add_argument("--gt-match", default="any")
    p.add_argument("--position", default="predicting")
    p = ps["extract"]
    p.add_argument("--samples", required=True)
    p.add_argument("--layers", nargs="+", required=True)
    p.add_argument("--store-dtype", default="float32", choices=["float32", "float16"])
    p = ps["decompose"]
    p.add_argument("--features", required=True)
    p.add_argument("--samples", required=True, help="the train selection (its counts explain a K too large)")
    p.add_argument("--method", required=True)
    p.add_argument("--k", type=int, required=True)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--max-iter", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    ps["embed"].add_argument("--samples", required=True)
    p = ps["ground"]
    p.add_argument("--lens", required=True)
    p.add_argument("--train-samples", required=True)
    p.add_argument("--test-samples", required=True)
    p.add_argument("--n-mas", type=int, default=5)
    p.add_argument("--n-words", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p = ps["evaluate"]
    p.add_argument("--grounding", required=True)
    p.add_argument("--embeddings", required=True)
    p.add_argument("--factors", default=None, help="factors.json of a generated world")
    p.add_argument("--bertscore-model", default="minilm")
    p.add_argument("--bertscore-layers", type=int, default=None)
    p = ps["report"]
    p.add_argument("--grounding", nargs="+", required=True)
    p.add_argument("--metrics", nargs="+", required=True)
    p.add_argument("--train-samples", required=True)
    p.add_argument("--test-samples", required=True)
    p.add_argument("--focus", type=_json, required=True, help='{"layer": "4", "k": 20}')
    return parser


def _terminate(signum, frame):
    # Turn SIGTERM (what Snakemake and SLURM send) into an exception so that
    # atomic writers remove their temporary outputs on the way out.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, _terminate)
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except MMConceptsError as e:
        print(f"mmconcepts {args.command}: error: {e}", file=sys.stderr)
        sys.exit(1)
