"""Commands of steering: choose the state sets, make the vectors, steer on held-out items, report."""

from __future__ import annotations

from mmconcepts.cli.registry import DATA, HEADER, MODEL, OUT, THREADS, arg, command, json_arg
from mmconcepts.device import set_threads

VQA = [
    arg("--vqa", type=json_arg, default=None, help='{"questions", "annotations", "images", "pattern"} of the split'),
]
TASK = arg("--task", required=True, choices=["vqa", "captions"])
INSTRUCTION = arg("--instruction", required=True, help="the caption instruction")


def _adapter(a):
    from mmconcepts.models.registry import load_adapter

    return load_adapter(a.adapter, a.model, dtype=a.dtype, device=a.device, trust_remote_code=a.trust_remote_code)


def _questions(spec: dict, limit: int | None = None):
    from mmconcepts.data.vqav2 import image_path, load_vqa

    questions = load_vqa(spec["questions"], spec.get("annotations"), limit=limit or None)
    return questions, lambda image_id: image_path(image_id, spec["images"], spec["pattern"])


@command(
    "steering-sets",
    "choose the train samples of a steering vector's base and target sets",
    OUT, MODEL, THREADS, TASK, INSTRUCTION, *VQA,
    arg("--base", type=json_arg, required=True, help='a set: {"answer": X}, {"word": W} or "before_eos"'),
    arg("--target", type=json_arg, required=True),
    arg("--captions", default=None, help="the model's train captions (results/<model>/captions/train.jsonl)"),
    arg("--limit", type=int, default=2000, help="samples per set at most"),
    arg("--batch-size", type=int, default=16),
    arg("--name", required=True, help="the steering entry, for messages"),
)  # fmt: skip
def steering_sets(a):
    from mmconcepts.atomic import write_json
    from mmconcepts.concepts.captioning import read_captions
    from mmconcepts.errors import MMConceptsError
    from mmconcepts.steering.sets import answer_items, caption_items
    from mmconcepts.steering.specs import parse_set

    set_threads(a.threads)
    specs = {role: parse_set(spec, f"steering.{a.name}.{role}") for role, spec in (("base", a.base), ("target", a.target))}
    adapter = _adapter(a)
    out = {}
    for role, (kind, value) in specs.items():
        spec = getattr(a, role)
        if kind == "answer":
            if a.vqa is None:
                raise MMConceptsError(f"steering.{a.name}.{role}: an answer set needs the data set's VQA questions (datasets.<name>.vqa)")
            # Three questions per image in the shapes world, yes/no about a third and balanced: 6·limit
            # questions hold about `limit` of each answer (VQAv2 has a similar share of yes/no).
            questions, image_path = _questions(a.vqa, 6 * a.limit)
            items, counts = answer_items(adapter, questions, image_path, value, batch_size=a.batch_size, limit=a.limit)
        else:
            rows = read_captions(a.captions)
            items, counts = caption_items(rows, adapter.caption_prompt(a.instruction), kind, value, limit=a.limit)
        if not items:
            raise MMConceptsError(f"steering.{a.name}.{role}: no train sample for {spec!r} ({counts}); the model never says it")
        out[role] = {"spec": spec, "kind": kind, "value": value, "counts": {**counts, "kept": len(items)}, "items": items}
    write_json(a.out, out, indent=None)


@command(
    "steering-vector",
    "the steering vector of one layer: mean(target states) − mean(base states), or read from a dictionary or a shift",
    MODEL, THREADS, HEADER,
    arg("--sets", default=None, help="the chosen sets (steering-sets)"),
    arg("--dictionary", default=None, help="a dictionary.npz of the layer, with --pair"),
    arg("--pair", type=int, nargs=2, metavar=("I", "J"), help="s_ij = u_j − u_i"),
    arg("--shift", default=None, help="a shift_vectors.npz of the layer, with --concept"),
    arg("--concept", type=int, help="k: the vector is the concept's shift Δ_k"),
    arg("--layer", required=True),
    arg("--batch-size", type=int, default=16),
    arg("--out-dir", required=True),
)  # fmt: skip
def steering_vector(a):
    from mmconcepts.atomic import read_json
    from mmconcepts.errors import MMConceptsError
    from mmconcepts.models.hooks import parse_layer
    from mmconcepts.steering.vectors import POSITION_RULES, concept_vector, mean_state, save_vector, shift_vector

    sources = [x for x in (a.sets, a.dictionary, a.shift) if x]
    if len(sources) != 1:
        raise MMConceptsError("steering-vector: give exactly one of --sets, --dictionary (with --pair), --shift (with --concept)")
    set_threads(a.threads)
    adapter = _adapter(a)
    layer = parse_layer(a.layer, adapter.n_layers)
    if a.sets:
        sets = read_json(a.sets, "steering sets")
        means = {role: mean_state(adapter, sets[role]["items"], layer, a.batch_size) for role in ("base", "target")}
        vector = means["target"] - means["base"]
        origin = {
            role: {"spec": s["spec"], "size": len(s["items"]), "counts": s["counts"], "position": POSITION_RULES[s["kind"]]}
            for role, s in sets.items()
        }
    elif a.dictionary:
        (vector, origin), means = concept_vector(a.dictionary, *a.pair), None
    else:
        (vector, origin), means = shift_vector(a.shift, a.concept), None
    hidden = adapter.language_model().config.hidden_size
    if vector.shape != (hidden,):
        raise MMConceptsError(f"{sources[0]}: vectors of size {vector.shape[-1]} for a model of hidden size {hidden}")
    save_vector(a.out_dir, vector, means, {**a.header, "layer": layer, "sets": origin})


def _eval_items(a, adapter):
    """Held-out items (val) to steer on, and what their figures are computed against."""
    from mmconcepts.cli.registry import dataset
    from mmconcepts.data.karpathy import load_factors
    from mmconcepts.models.generation import vqa_instruction

    if a.task == "vqa":
        questions, image_path = _questions(a.vqa, a.limit)
        items = [
            {"id": q.id, "image": str(image_path(q.image_id)), "prompt": adapter.caption_prompt(vqa_instruction(q.question)), "question": q.question}
            for q in questions
        ]
        return items, {"questions": questions}
    samples = dataset(a, split="val", limit=a.limit or None)
    prompt = adapter.caption_prompt(a.instruction)
    items = [{"id": s.id, "image": str(s.path), "prompt": prompt} for s in samples]
    factors = load_factors(a.factors) if a.factors else None
    return items, {"references": {s.id: list(s.captions) for s in samples}, "factors": factors}


EVAL = [
    TASK, INSTRUCTION, *VQA, *DATA,
    arg("--factors", default=None, help="factors.json of a generated world: are the untargeted factors still named?"),
    arg("--limit", type=int, default=0, help="held-out items at most; 0: all"),
    arg("--batch-size", type=int, default=16),
    arg("--max-new-tokens", type=int, required=True),
]  # fmt: skip


@command("steer-baseline", "generate on the held-out items without steering", OUT, MODEL, THREADS, HEADER, *EVAL)
def steer_baseline(a):
    from mmconcepts.atomic import write_json
    from mmconcepts.steering.steer import generate

    set_threads(a.threads)
    adapter = _adapter(a)
    items, _ = _eval_items(a, adapter)
    outputs = generate(adapter, items, layer=None, vector=None, alpha=0.0, apply="all", batch_size=a.batch_size, max_new_tokens=a.max_new_tokens)
    write_json(a.out, {**a.header, "items": items, "outputs": outputs}, indent=None)


@command(
    "steer",
    "steer on the held-out items with one layer's vector, every α, and the random control",
    OUT, MODEL, THREADS, HEADER, *EVAL,
    arg("--vector", required=True),
    arg("--baseline", required=True, help="the unsteered outputs (steer-baseline)"),
    arg("--alphas", type=json_arg, required=True, help="JSON list of numbers"),
    arg("--apply", default="all"),
    arg("--source", default=None, help="VQA: the answer being steered away from"),
    arg("--target", required=True, help="VQA: the answer steered to; captions: the word"),
    arg("--seed", type=int, default=0),
)  # fmt: skip
def steer(a):
    from mmconcepts.atomic import read_json, write_json
    from mmconcepts.errors import MMConceptsError
    from mmconcepts.steering.steer import evaluate, generate, random_like
    from mmconcepts.steering.vectors import load_vector

    if not isinstance(a.alphas, list) or not a.alphas or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in a.alphas):
        raise MMConceptsError(f"alphas must be a list of numbers, not {a.alphas!r}")
    set_threads(a.threads)
    adapter = _adapter(a)
    vector, facts = load_vector(a.vector, adapter.language_model().config.hidden_size)
    baseline = read_json(a.baseline, "unsteered outputs")
    items, truth = _eval_items(a, adapter)
    if [i["id"] for i in items] != [i["id"] for i in baseline["items"]]:
        raise MMConceptsError(f"{a.baseline}: unsteered outputs of other items; run steer-baseline again")
    layer = facts["layer"]

    def run(v, alpha):
        steered = generate(adapter, items, layer=layer, vector=v, alpha=alpha, apply=a.apply, batch_size=a.batch_size, max_new_tokens=a.max_new_tokens)
        figures = evaluate(a.task, baseline["outputs"], steered, source=a.source, target=a.target, **truth)
        return {"alpha": alpha, "figures": figures, "outputs": steered}

    runs = [run(vector, float(alpha)) for alpha in sorted(a.alphas)]
    control = run(random_like(vector, a.seed), float(max(a.alphas)))
    write_json(a.out, {**a.header, "layer": layer, "apply": a.apply, "vector": facts, "runs": runs, "random": control}, indent=None)


@command("steering-report", "write the report of one steering entry", OUT, arg("--runs", nargs="+", required=True), arg("--baseline", required=True))
def steering_report(a):
    from mmconcepts.report.steering import render_steering_report

    render_steering_report(a.out, a.runs, a.baseline)
