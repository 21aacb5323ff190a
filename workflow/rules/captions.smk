# Captions once per model and split (shared by every word), then the samples kept for a word.
# A split is captioned in shards (scale.shard_size images each, whole batches), one job each,
# which gather_captions joins; a killed shard job resumes from its last whole batch.


rule captions:
    input:
        model=model_inputs,
        data=dataset_inputs,
    output:
        temp("results/{model}/captions/{split}/{shard}.jsonl"),
    params:
        model=model_params,
        data=data_args,
        limit=split_limit,
        prompt=config["prompt"],
        batch_size=model_setting("batch_size"),
        max_new_tokens=model_setting("max_new_tokens"),
        workers=config["scale"]["workers"],
        code_version=CODE_VERSION,
    log:
        "results/{model}/logs/captions_{split}_{shard}.log",
    benchmark:
        "results/{model}/benchmarks/captions_{split}_{shard}.tsv"
    threads: INFERENCE_THREADS
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts captions --adapter {params.model[adapter]} --model {params.model[path]:q}"
        " --dtype {params.model[dtype]} --device {params.model[device]} {params.model[trust]}"
        " {params.data} --split {wildcards.split} --limit {params.limit} --shard {wildcards.shard}"
        " --instruction {params.prompt:q} --batch-size {params.batch_size} --workers {params.workers}"
        " --max-new-tokens {params.max_new_tokens} --threads {threads} --out {output:q} > {log:q} 2>&1"


rule gather_captions:
    input:
        caption_shards,
    output:
        "results/{model}/captions/{split}.jsonl",
    log:
        "results/{model}/logs/gather_captions_{split}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts gather-captions --shards {input:q} --out {output:q} > {log:q} 2>&1"


rule select:
    input:
        captions="results/{model}/captions/{split}.jsonl",
        data=dataset_inputs,
    output:
        "results/{model}/{token}/samples/{split}.json",
    params:
        data=data_args,
        aliases=token_aliases,
        gt_match=config["selection"]["gt_match"],
        position=config["selection"]["position"],
        code_version=CODE_VERSION,
    log:
        "results/{model}/{token}/logs/select_{split}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts select --captions {input.captions:q} {params.data}"
        " --split {wildcards.split} --word {wildcards.token:q}"
        " --aliases {params.aliases:q} --gt-match {params.gt_match} --position {params.position}"
        " --out {output:q} > {log:q} 2>&1"
