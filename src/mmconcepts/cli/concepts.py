"""Commands of the concept pipeline (CoX-LMM), in the order the workflow runs them."""

from __future__ import annotations

import json
from pathlib import Path

from mmconcepts.cli.registry import CLIP, DATA, HEADER, MODEL, OUT, THREADS, arg, command, dataset, json_arg
from mmconcepts.device import set_threads
from mmconcepts.errors import MMConceptsError

INSTRUCTION = arg("--instruction", required=True, help="the captioning prompt's text")
BATCH_SIZE = arg("--batch-size", type=int, default=16)
SHARD = arg("--shard", default="1-of-1", help="this job's part of the rows: i-of-n (concepts.shards)")
WORKERS = arg("--workers", type=int, default=0, help="loader processes that open and preprocess batches ahead")
DICTIONARY = arg("--dictionary", required=True, help="dictionary.npz of the decompose stage")
TEST_FEATURES = arg("--test-features", required=True, help="Zarr store of the test split, at the dictionary's layer")
TOP_R = arg("--top-r", type=int, default=3, help="concepts read per test image")


def _adapter(a):
    from mmconcepts.models.registry import load_adapter

    set_threads(a.threads)
    return load_adapter(a.adapter, a.model, dtype=a.dtype, device=a.device, trust_remote_code=a.trust_remote_code)


@command(
    "captions",
    "caption every image of a split, or of one shard of it",
    OUT, THREADS, MODEL, DATA, INSTRUCTION, BATCH_SIZE, SHARD, WORKERS,
    arg("--split", required=True),
    arg("--limit", type=int, default=0, help="at most this many images; 0: all"),
    arg("--max-new-tokens", type=int, default=32),
)  # fmt: skip
def captions(a):
    from mmconcepts.concepts.captioning import caption_split
    from mmconcepts.concepts.shards import shard_rows

    samples = dataset(a, split=a.split, limit=a.limit or None)
    if not samples:
        raise MMConceptsError(f"{a.gt}: no images in split {a.split!r}")
    rows = shard_rows(len(samples), a.shard, a.batch_size)
    counts = caption_split(
        _adapter(a), samples[rows.start : rows.stop], a.out,
        instruction=a.instruction, batch_size=a.batch_size, max_new_tokens=a.max_new_tokens, workers=a.workers,
    )  # fmt: skip
    print(json.dumps({"rows": [rows.start, rows.stop], **counts}))


@command(
    "gather-captions",
    "join the captions of a split's shards, in order",
    OUT,
    arg("--shards", required=True, nargs="+", help="the shards' files, 1-of-n.jsonl .. n-of-n.jsonl"),
)  # fmt: skip
def gather_captions(a):
    from mmconcepts.concepts.shards import gather_captions

    print(json.dumps({"rows": gather_captions([Path(p) for p in a.shards], Path(a.out))}))


@command(
    "select",
    "keep the samples whose generated and ground-truth captions contain the word",
    OUT, DATA,
    arg("--captions", required=True),
    arg("--split", required=True),
    arg("--word", required=True),
    arg("--aliases", type=json_arg, default=[], help="JSON list of other forms of the word"),
    arg("--gt-match", default="any"),
    arg("--position", default="predicting"),
)  # fmt: skip
def select(a):
    from mmconcepts.atomic import write_json
    from mmconcepts.concepts.captioning import read_captions
    from mmconcepts.concepts.selection import require_enough, select_samples

    gt = {s.id: s for s in dataset(a, split=a.split)}
    sel = select_samples(
        read_captions(a.captions), gt, a.word, aliases=a.aliases, gt_match=a.gt_match, position=a.position
    )
    require_enough(sel, 1, a.split)
    write_json(a.out, {"split": a.split, **sel}, indent=None)
    print(json.dumps(sel["counts"]))


@command(
    "lens",
    "export the model's final norm, unembedding and whole-word table",
    OUT, THREADS, MODEL,
    arg("--lexicon-size", type=int, default=50000, help="the most frequent English words a concept word may be"),
)  # fmt: skip
def lens(a):
    from mmconcepts.concepts.lens import export_lens

    print(json.dumps(export_lens(_adapter(a), a.out, lexicon_size=a.lexicon_size)))


@command(
    "extract",
    "hidden states at the word's position, every layer from one pass; one shard of the kept samples",
    THREADS, MODEL, INSTRUCTION, BATCH_SIZE, SHARD, WORKERS,
    arg("--out", required=True, nargs="+", help="one Zarr store per layer"),
    arg("--samples", required=True),
    arg("--layers", nargs="+", required=True),
    arg("--store-dtype", default="float32", choices=["float32", "float16"]),
)  # fmt: skip
def extract(a):
    from mmconcepts.atomic import read_json
    from mmconcepts.concepts.extraction import extract_features, store_meta
    from mmconcepts.concepts.feature_store import shard_stores
    from mmconcepts.concepts.shards import shard_rows

    if len(a.layers) != len(a.out):
        raise MMConceptsError(f"{len(a.layers)} layers but {len(a.out)} output stores")
    selection = read_json(a.samples)
    rows = shard_rows(len(selection["samples"]), a.shard, a.batch_size)
    stores = {L: Path(o) for L, o in zip(a.layers, a.out)}
    attrs = {"model": a.model, "adapter": a.adapter}
    if not rows:
        # Fewer batches than shards: this one holds no rows and never loads the model.
        with shard_stores(stores, rows, len(selection["samples"]), 0, a.store_dtype, store_meta(selection, rows, attrs)):
            pass
    else:
        extract_features(
            _adapter(a), selection, stores, rows=rows,
            instruction=a.instruction, batch_size=a.batch_size, dtype=a.store_dtype, attrs=attrs, workers=a.workers,
        )  # fmt: skip
    print(json.dumps({"rows": [rows.start, rows.stop], "of": len(selection["samples"])}))


@command(
    "gather-features",
    "join the feature stores of a split's shards, one store per layer",
    arg("--shards", required=True, nargs="+", help="the shards' folders, in order, each with a layer<L>.zarr per layer"),
    arg("--layers", nargs="+", required=True),
    arg("--out", required=True, nargs="+", help="one Zarr store per layer"),
)  # fmt: skip
def gather_features(a):
    from mmconcepts.concepts.feature_store import gather_features
    from mmconcepts.concepts.shards import check_complete

    if len(a.layers) != len(a.out):
        raise MMConceptsError(f"{len(a.layers)} layers but {len(a.out)} output stores")
    check_complete([Path(p).name for p in a.shards])
    rows = {L: gather_features([Path(p) / f"layer{L}.zarr" for p in a.shards], Path(o)) for L, o in zip(a.layers, a.out)}
    print(json.dumps(rows))


@command(
    "decompose",
    "learn the concept dictionary on the train features",
    OUT, THREADS,
    arg("--features", required=True),
    arg("--samples", required=True, help="the train selection (its counts explain a K too large)"),
    arg("--method", required=True),
    arg("--k", type=int, required=True),
    arg("--alpha", type=float, default=1.0),
    arg("--max-iter", type=int, default=None),
    arg("--seed", type=int, default=0),
    arg("--device", default="cpu", help="cpu (default) or cuda"),
)  # fmt: skip
def decompose(a):
    from mmconcepts.atomic import read_json
    from mmconcepts.concepts.decomposition import make_decomposer, save_dictionary
    from mmconcepts.concepts.feature_store import read_features
    from mmconcepts.concepts.selection import require_enough

    require_enough(read_json(a.samples), a.k, "train")
    Z, attrs = read_features(a.features)
    set_threads(a.threads)
    est = make_decomposer(a.method, a.k, alpha=a.alpha, random_state=a.seed, max_iter=a.max_iter, device=a.device)
    V = est.fit_transform(Z)
    params = {"k": a.k, "alpha": a.alpha, "seed": a.seed, "max_iter": a.max_iter, "layer": attrs["layer"]}
    save_dictionary(a.out, est, method=a.method, train_activations=V, sample_ids=attrs["sample_ids"], params=params)


@command(
    "embed",
    "CLIP image embeddings of the kept test images, and the ground-truth captions' CLIPScore",
    OUT, THREADS, DATA, CLIP,
    arg("--samples", required=True),
)  # fmt: skip
def embed(a):
    import numpy as np

    from mmconcepts.atomic import read_json, write_npz
    from mmconcepts.concepts.metrics import ClipScorer, clip_score
    from mmconcepts.models.clip import load_clip

    samples = read_json(a.samples)["samples"]
    gt = {s.id: s for s in dataset(a)}
    set_threads(a.threads)
    scorer = ClipScorer(*load_clip(a.clip), name=a.clip["name"])
    image_emb = scorer.encode_images([s["image"] for s in samples])
    gt_scores = np.array(
        [clip_score(image_emb[i : i + 1], scorer.encode_texts(list(gt[s["id"]].captions))).mean() for i, s in enumerate(samples)]
    )
    write_npz(a.out, ids=np.array([s["id"] for s in samples]), image_emb=image_emb, gt_clipscore=gt_scores)


@command(
    "ground",
    "ground every concept in images and words; code the test images once",
    OUT, HEADER, DICTIONARY, TEST_FEATURES, TOP_R,
    arg("--codes", required=True, help="where the test images' concept activations go (npz)"),
    arg("--lens", required=True),
    arg("--train-samples", required=True),
    arg("--test-samples", required=True),
    arg("--n-mas", type=int, default=5),
    arg("--n-words", type=int, default=15),
    arg("--seed", type=int, default=0),
)  # fmt: skip
def ground(a):
    from mmconcepts.atomic import read_json, write_json
    from mmconcepts.concepts.decomposition import load_dictionary
    from mmconcepts.concepts.feature_store import read_features
    from mmconcepts.concepts.grounding import ground, save_codes
    from mmconcepts.concepts.lens import Lens

    d = load_dictionary(a.dictionary)
    train = {s["id"]: s for s in read_json(a.train_samples)["samples"]}
    test = {s["id"]: s for s in read_json(a.test_samples)["samples"]}
    Z, attrs = read_features(a.test_features)
    codes = d.transform(Z)
    out = ground(
        d,
        Lens(a.lens),
        [train[i] for i in d.sample_ids],
        [test[i] for i in attrs["sample_ids"]],
        codes,
        n_mas=a.n_mas,
        n_words=a.n_words,
        top_r=a.top_r,
        seed=a.seed,
        header=a.header,
    )
    save_codes(a.codes, codes, attrs["sample_ids"])
    write_json(a.out, out, indent=None)


@command(
    "probe",
    "how well a linear probe on one layer's test states finds each factor value (once per layer, for every dictionary)",
    OUT, THREADS, TEST_FEATURES,
    arg("--factors", required=True, help="factors.json of a generated world"),
)  # fmt: skip
def probe(a):
    from mmconcepts.atomic import write_json
    from mmconcepts.concepts.feature_store import read_features
    from mmconcepts.concepts.metrics import probe_auroc
    from mmconcepts.data.karpathy import factors_of

    set_threads(a.threads)
    Z, attrs = read_features(a.test_features)
    found = probe_auroc(Z, factors_of(a.factors, attrs["sample_ids"]))
    write_json(a.out, {"probe_auroc": [{"factor": f, "value": v, "auroc": auroc} for (f, v), auroc in found.items()]})


@command(
    "evaluate",
    "score every dictionary of one layer on the test split (the models and the captions' embeddings are loaded once)",
    THREADS, DATA, CLIP, TEST_FEATURES, TOP_R,
    arg("--dictionary", nargs="+", required=True, help="one per run"),
    arg("--grounding", nargs="+", required=True, help="one per run, from ground"),
    arg("--codes", nargs="+", required=True, help="one per run: the test images' concept activations, from ground"),
    arg("--headers", type=json_arg, required=True, help="one JSON object per run: fields copied into its output"),
    arg("--out", nargs="+", required=True, help="one per run"),
    arg("--embeddings", required=True),
    arg("--factors", default=None, help="factors.json of a generated world"),
    arg("--probe", default=None, help="the layer's linear-probe AUROCs (probe), with --factors"),
    arg("--bertscore-model", default="minilm"),
    arg("--bertscore-layers", type=int, default=None),
)  # fmt: skip
def evaluate(a):
    import numpy as np

    from mmconcepts.atomic import read_json, write_json
    from mmconcepts.concepts.decomposition import load_dictionary
    from mmconcepts.concepts.evaluation import evaluate
    from mmconcepts.concepts.feature_store import read_features
    from mmconcepts.concepts.grounding import load_codes
    from mmconcepts.concepts.metrics import BertScorer, ClipScorer
    from mmconcepts.models.clip import load_clip

    if not isinstance(a.headers, list) or len({len(a.dictionary), len(a.grounding), len(a.codes), len(a.headers), len(a.out)}) != 1:
        raise MMConceptsError("evaluate: --dictionary, --grounding, --codes, --headers (a JSON list) and --out need one entry per run")
    runs = list(zip(a.dictionary, a.grounding, a.codes, a.headers, a.out, strict=True))
    Z, attrs = read_features(a.test_features)
    with np.load(a.embeddings, allow_pickle=False) as f:
        emb = {k: f[k] for k in f.files}
    if emb["ids"].tolist() != attrs["sample_ids"]:
        raise MMConceptsError(f"{a.embeddings} and {a.test_features} list different test samples")
    gt = {s.id: s for s in dataset(a)}
    factors = None
    if a.factors:
        from mmconcepts.data.karpathy import factors_of

        factors = factors_of(a.factors, attrs["sample_ids"])
    probe = {(r["factor"], r["value"]): r["auroc"] for r in read_json(a.probe, "probe file")["probe_auroc"]} if a.probe else None
    set_threads(a.threads)
    clip = ClipScorer(*load_clip(a.clip), name=a.clip["name"])
    bert = BertScorer(a.bertscore_model, num_layers=a.bertscore_layers)
    references = [list(gt[i].captions) for i in attrs["sample_ids"]]
    for dictionary, grounding, codes, header, out in runs:
        metrics = evaluate(
            load_dictionary(dictionary),
            read_json(grounding),
            Z,
            load_codes(codes, attrs["sample_ids"]),
            image_emb=emb["image_emb"],
            gt_clipscore=emb["gt_clipscore"],
            encode_texts=clip.encode_texts,
            bert=bert,
            references=references,
            factors=factors,
            top_r=a.top_r,
            header=header,
            probe=probe,
        )
        write_json(out, metrics)


@command(
    "report",
    "write the HTML report of one model and word",
    OUT, HEADER,
    arg("--grounding", nargs="+", required=True),
    arg("--metrics", nargs="+", required=True),
    arg("--train-samples", required=True),
    arg("--test-samples", required=True),
    arg("--focus", type=json_arg, required=True, help='{"layer": "4", "k": 20}'),
)  # fmt: skip
def report(a):
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
    # No date: two runs of the same config give the same file.
    header = {
        **a.header,
        "counts": {"train": read_json(a.train_samples)["counts"], "test": read_json(a.test_samples)["counts"]},
        "version": __version__,
    }
    render_report(a.out, header=header, entries=entries, focus=a.focus)
