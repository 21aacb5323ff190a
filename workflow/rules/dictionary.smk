# The concept dictionary of one layer, method and K; its grounding; its scores.


rule decompose:
    input:
        features="results/{model}/{token}/features/train",
        # K is checked here, not in select: select must not rerun when K changes.
        samples="results/{model}/{token}/samples/train.json",
    output:
        "results/{model}/{token}/layer{layer}/{method}/k{k}/dictionary.npz",
    params:
        store=train_store,
        alpha=config["decomposition"]["alpha"],
        seed=config["decomposition"]["seed"],
        max_iter=max_iter_arg,
        code_version=CODE_VERSION,
    log:
        "results/{model}/{token}/layer{layer}/{method}/k{k}/decompose.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts decompose --features {params.store} --samples {input.samples} --method {wildcards.method} --k {wildcards.k}"
        " --alpha {params.alpha} --seed {params.seed} {params.max_iter} --threads {threads}"
        " --out {output} > {log} 2>&1"


rule ground:
    input:
        dictionary="results/{model}/{token}/layer{layer}/{method}/k{k}/dictionary.npz",
        lens="results/{model}/lens.npz",
        train="results/{model}/{token}/samples/train.json",
        test="results/{model}/{token}/samples/test.json",
        features="results/{model}/{token}/features/test",
    output:
        "results/{model}/{token}/layer{layer}/{method}/k{k}/grounding.json",
    params:
        store=test_store,
        n_mas=config["grounding"]["n_mas"],
        n_words=config["grounding"]["n_words"],
        top_r=config["grounding"]["top_r"],
        seed=config["grounding"]["seed"],
        header=run_header,
        code_version=CODE_VERSION,
    log:
        "results/{model}/{token}/layer{layer}/{method}/k{k}/ground.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts ground --dictionary {input.dictionary} --lens {input.lens}"
        " --train-samples {input.train} --test-samples {input.test} --test-features {params.store}"
        " --n-mas {params.n_mas} --n-words {params.n_words} --top-r {params.top_r} --seed {params.seed}"
        " --header {params.header:q} --out {output} > {log} 2>&1"


rule evaluate:
    input:
        dictionary="results/{model}/{token}/layer{layer}/{method}/k{k}/dictionary.npz",
        grounding="results/{model}/{token}/layer{layer}/{method}/k{k}/grounding.json",
        features="results/{model}/{token}/features/test",
        embeddings="results/{model}/{token}/clip/test.npz",
        clip=clip_inputs,
        data=dataset_inputs,
    output:
        report(
            "results/{model}/{token}/layer{layer}/{method}/k{k}/metrics.json",
            caption="../report/metrics.rst",
            category="Metrics",
            labels={"model": "{model}", "token": "{token}", "layer": "{layer}", "method": "{method}", "K": "{k}"},
        ),
    params:
        store=test_store,
        data=data_params,
        factors=factors_arg,
        clip=clip_spec,
        bertscore=bertscore_args,
        top_r=config["grounding"]["top_r"],
        header=run_header,
        code_version=CODE_VERSION,
    log:
        "results/{model}/{token}/layer{layer}/{method}/k{k}/evaluate.log",
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts evaluate --dictionary {input.dictionary} --grounding {input.grounding}"
        " --test-features {params.store} --embeddings {input.embeddings} --gt {params.data[gt]:q}"
        " --images {params.data[images]:q} {params.factors} --clip {params.clip:q} {params.bertscore}"
        " --top-r {params.top_r} --header {params.header:q} --threads {threads} --out {output} > {log} 2>&1"
