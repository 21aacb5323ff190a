# How fine-tuning moved a model's concepts: the shapes world's fine-tunes, the
# shift analysis per layer, and its report. The two models' captions, samples,
# feature stores and lenses come from the concept rules, once per model.


rule finetune_lmm:
    input:
        unpack(finetune_inputs),
    output:
        directory("resources/models/{finetuned}"),
    wildcard_constraints:
        finetuned=one_of(FINETUNES),
    params:
        base=finetune_base,
        style=lambda wildcards: FINETUNES[wildcards.finetuned]["style"],
        train=json.dumps({"prompt": config["prompt"], **config["finetune_lmm"]}, sort_keys=True),
        code_version=CODE_VERSION,
    log:
        "results/logs/finetune_lmm_{finetuned}.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts finetune-lmm --base {params.base:q} --world {input.world:q} --style {params.style:q}"
        " --out {output:q} --threads {threads} --params {params.train:q} > {log:q} 2>&1"


rule shift:
    input:
        original_features="results/{a}/{token}/features/train",
        original_samples="results/{a}/{token}/samples/train.json",
        original_lens="results/{a}/lens.npz",
        finetuned_features="results/{b}/{token}/features/train",
        finetuned_samples="results/{b}/{token}/samples/train.json",
        finetuned_lens="results/{b}/lens.npz",
        truth=shift_truth_inputs,
    output:
        summary="results/shift/{a}--{b}/{token}/layer{layer}/{method}/k{k}/shift.json",
        vectors="results/shift/{a}--{b}/{token}/layer{layer}/{method}/k{k}/shift_vectors.npz",
    wildcard_constraints:
        a=one_of(config["models"]),
        b=one_of(config["models"]),
    params:
        original=shift_side("a"),
        finetuned=shift_side("b"),
        truth=shift_truth,
        aggregate=shift_setting("aggregate"),
        n_words=config["grounding"]["n_words"],
        n_shift_words=shift_setting("n_words"),
        n_mas=shift_setting("n_mas"),
        alpha=config["decomposition"]["alpha"],
        seed=config["decomposition"]["seed"],
        code_version=CODE_VERSION,
    log:
        "results/shift/{a}--{b}/{token}/layer{layer}/{method}/k{k}/shift.log",
    threads: 1  # numpy and scikit-learn on a few thousand states: start-up dominates
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts shift --original {params.original} --finetuned {params.finetuned}"
        " --word {wildcards.token:q} --layer {wildcards.layer} --method {wildcards.method} --k {wildcards.k}"
        " --aggregate {params.aggregate} --seed {params.seed} --alpha {params.alpha} --n-words {params.n_words}"
        " --n-shift-words {params.n_shift_words} --n-mas {params.n_mas} {params.truth} --threads {threads}"
        " --out {output.summary:q} --vectors {output.vectors:q} > {log:q} 2>&1"


rule shift_report:
    input:
        shift_runs,
    output:
        report(
            "results/shift/{a}--{b}/{token}/report.html",
            caption="../report/shift.rst",
            category="Shift reports",
            labels={"original": "{a}", "finetuned": "{b}", "token": "{token}"},
        ),
    wildcard_constraints:
        a=one_of(config["models"]),
        b=one_of(config["models"]),
    params:
        code_version=CODE_VERSION,
    log:
        "results/shift/{a}--{b}/{token}/report.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts shift-report --runs {input:q} --out {output:q} > {log:q} 2>&1"
