# What the model holds about the word: hidden states (one pass, every layer, in shards that
# gather_features joins), the logit lens used to name concepts, and CLIP embeddings of the
# test images.


rule lens:
    input:
        model=model_inputs,
    output:
        "results/{model}/lens.npz",
    params:
        model=model_params,
        lexicon_size=config["grounding"]["lexicon_size"],
        code_version=CODE_VERSION,
    log:
        "results/{model}/logs/lens.log",
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts lens --adapter {params.model[adapter]} --model {params.model[path]:q}"
        " --dtype {params.model[dtype]} --device {params.model[device]} {params.model[trust]}"
        " --lexicon-size {params.lexicon_size} --out {output:q} > {log:q} 2>&1"


rule extract:
    input:
        model=model_inputs,
        samples="results/{model}/{token}/samples/{split}.json",
    output:
        # One job owns the folder: every layer's Zarr store comes from the same forward pass.
        temp(directory("results/{model}/{token}/feature_shards/{split}/{shard}")),
    params:
        model=model_params,
        layers=model_layers,
        stores=shard_feature_stores,
        prompt=config["prompt"],
        batch_size=model_setting("batch_size"),
        store_dtype=model_setting("store_dtype"),
        workers=config["scale"]["workers"],
        code_version=CODE_VERSION,
    log:
        "results/{model}/{token}/logs/extract_{split}_{shard}.log",
    benchmark:
        "results/{model}/{token}/benchmarks/extract_{split}_{shard}.tsv"
    threads: INFERENCE_THREADS
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts extract --adapter {params.model[adapter]} --model {params.model[path]:q}"
        " --dtype {params.model[dtype]} --device {params.model[device]} {params.model[trust]} --samples {input.samples:q}"
        " --instruction {params.prompt:q} --batch-size {params.batch_size} --store-dtype {params.store_dtype}"
        " --shard {wildcards.shard} --workers {params.workers}"
        " --layers {params.layers} --threads {threads} --out {params.stores:q} > {log:q} 2>&1"


rule gather_features:
    input:
        feature_shards,
    output:
        directory("results/{model}/{token}/features/{split}"),
    params:
        layers=model_layers,
        stores=feature_stores,
    log:
        "results/{model}/{token}/logs/gather_features_{split}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts gather-features --shards {input:q} --layers {params.layers}"
        " --out {params.stores:q} > {log:q} 2>&1"


rule embed:
    input:
        samples="results/{model}/{token}/samples/test.json",
        clip=clip_inputs,
        data=dataset_inputs,
    output:
        "results/{model}/{token}/clip/test.npz",
    params:
        data=data_args,
        clip=clip_spec,
        code_version=CODE_VERSION,
    log:
        "results/{model}/{token}/logs/embed.log",
    threads: INFERENCE_THREADS
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts embed --samples {input.samples:q} {params.data}"
        " --clip {params.clip:q} --threads {threads} --out {output:q} > {log:q} 2>&1"
