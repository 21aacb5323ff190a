# The concept dictionary of one layer, method and K; its grounding; its scores (with the
# layer's linear probe, computed once for every dictionary of the layer).


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
        device=config["decomposition"]["device"],
        code_version=CODE_VERSION,
    log:
        "results/{model}/{token}/layer{layer}/{method}/k{k}/decompose.log",
    threads: 1  # start-up dominates on the shapes world; profiles may set more for real data
    resources:
        # CPU unless decomposition.device asks for CUDA; then the job holds a GPU like the model jobs.
        gpu=int(config["decomposition"]["device"] != "cpu"),
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts decompose --features {params.store:q} --samples {input.samples:q} --method {wildcards.method} --k {wildcards.k}"
        " --alpha {params.alpha} --seed {params.seed} {params.max_iter} --device {params.device} --threads {threads}"
        " --out {output:q} > {log:q} 2>&1"


rule ground:
    input:
        dictionary="results/{model}/{token}/layer{layer}/{method}/k{k}/dictionary.npz",
        lens="results/{model}/lens.npz",
        train="results/{model}/{token}/samples/train.json",
        test="results/{model}/{token}/samples/test.json",
        features="results/{model}/{token}/features/test",
    output:
        grounding="results/{model}/{token}/layer{layer}/{method}/k{k}/grounding.json",
        # The test lasso is solved once, here; evaluate reads the codes.
        codes="results/{model}/{token}/layer{layer}/{method}/k{k}/test_codes.npz",
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
        "python -m mmconcepts ground --dictionary {input.dictionary:q} --lens {input.lens:q}"
        " --train-samples {input.train:q} --test-samples {input.test:q} --test-features {params.store:q}"
        " --n-mas {params.n_mas} --n-words {params.n_words} --top-r {params.top_r} --seed {params.seed}"
        " --header {params.header:q} --codes {output.codes:q} --out {output.grounding:q} > {log:q} 2>&1"


rule probe:
    input:
        features="results/{model}/{token}/features/test",
        data=dataset_inputs,
    output:
        "results/{model}/{token}/probe/layer{layer}.json",
    params:
        store=test_store,
        factors=factors_arg,
        code_version=CODE_VERSION,
    log:
        "results/{model}/{token}/probe/layer{layer}.log",
    threads: 1  # start-up dominates on the shapes world; profiles may set more for real data
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts probe --test-features {params.store:q} {params.factors} --threads {threads} --out {output:q} > {log:q} 2>&1"


rule evaluate:
    # One job per layer scores all of its dictionaries: loading the models took most of a job
    # that scored one, and every dictionary is scored against the same embedded captions.
    input:
        dictionaries=layer_runs("dictionary.npz"),
        groundings=layer_runs("grounding.json"),
        codes=layer_runs("test_codes.npz"),
        features="results/{model}/{token}/features/test",
        embeddings="results/{model}/{token}/clip/test.npz",
        clip=clip_inputs,
        data=dataset_inputs,
        probe=probe_input,
    output:
        [
            report(
                path,
                caption="../report/metrics.rst",
                category="Metrics",
                labels={"model": "{model}", "token": "{token}", "layer": "{layer}", "method": method, "K": str(k)},
            )
            for path, (method, k) in zip(layer_runs("metrics.json"), DICTIONARY_RUNS)
        ],
    params:
        store=test_store,
        data=data_args,
        factors=factors_arg,
        probe=probe_arg,
        clip=clip_spec,
        bertscore=bertscore_args,
        top_r=config["grounding"]["top_r"],
        headers=layer_run_headers,
        code_version=CODE_VERSION,
    log:
        "results/{model}/{token}/layer{layer}/evaluate.log",
    threads: 1  # start-up dominates here: the two layers' one-thread jobs run at once
    resources:
        mem_mb=6000,
        runtime=60,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts evaluate --dictionary {input.dictionaries:q} --grounding {input.groundings:q} --codes {input.codes:q}"
        " --test-features {params.store:q} --embeddings {input.embeddings:q} {params.data}"
        " {params.factors} {params.probe} --clip {params.clip:q} {params.bertscore}"
        " --top-r {params.top_r} --headers {params.headers:q} --threads {threads} --out {output:q} > {log:q} 2>&1"
