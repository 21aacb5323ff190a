# Steering: the train samples of a vector's two sets, its vector per layer, the held-out
# generations without and with it (every α of the sweep), and the report.


wildcard_constraints:
    name=one_of(config["steering"]),


rule steering_sets:
    input:
        model=steer_model_inputs,
        data=steer_data_inputs,
        captions=steer_captions,
    output:
        "results/steering/{name}/sets.json",
    params:
        model=steer_model_params,
        task=steer_setting("task"),
        base=steer_set("base"),
        target=steer_set("target"),
        vqa=steer_vqa("train"),
        captions=steer_captions_arg,
        limit=steer_setting("n_train"),
        batch_size=steer_setting("batch_size"),
        prompt=config["prompt"],
        code_version=CODE_VERSION,
    log:
        "results/steering/{name}/logs/sets.log",
    threads: INFERENCE_THREADS
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts steering-sets --adapter {params.model[adapter]} --model {params.model[path]:q}"
        " --dtype {params.model[dtype]} --device {params.model[device]} {params.model[trust]} --task {params.task} --name {wildcards.name:q}"
        " --base {params.base:q} --target {params.target:q} {params.vqa} {params.captions} --instruction {params.prompt:q}"
        " --limit {params.limit} --batch-size {params.batch_size} --threads {threads} --out {output:q} > {log:q} 2>&1"


rule steering_vector:
    input:
        model=steer_model_inputs,
        source=steer_vector_input,
    output:
        vector="results/steering/{name}/layer{layer}/vector.safetensors",
        facts="results/steering/{name}/layer{layer}/vector.json",
    params:
        model=steer_model_params,
        batch_size=steer_setting("batch_size"),
        source=steer_vector_source,
        header=steer_header,
        out_dir=subpath(output.vector, parent=True),
        code_version=CODE_VERSION,
    log:
        "results/steering/{name}/logs/vector_layer{layer}.log",
    threads: INFERENCE_THREADS
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts steering-vector --adapter {params.model[adapter]} --model {params.model[path]:q}"
        " --dtype {params.model[dtype]} --device {params.model[device]} {params.model[trust]} {params.source} --layer {wildcards.layer}"
        " --batch-size {params.batch_size} --header {params.header:q} --threads {threads} --out-dir {params.out_dir:q}"
        " > {log:q} 2>&1"


rule steer_baseline:
    input:
        model=steer_model_inputs,
        data=steer_data_inputs,
    output:
        "results/steering/{name}/unsteered.json",
    params:
        model=steer_model_params,
        task=steer_setting("task"),
        vqa=steer_vqa("val"),
        data=steer_data_args,
        limit=steer_setting("n_eval"),
        batch_size=steer_setting("batch_size"),
        max_new_tokens=steer_setting("max_new_tokens"),
        header=steer_header,
        prompt=config["prompt"],
        code_version=CODE_VERSION,
    log:
        "results/steering/{name}/logs/unsteered.log",
    threads: INFERENCE_THREADS
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts steer-baseline --adapter {params.model[adapter]} --model {params.model[path]:q}"
        " --dtype {params.model[dtype]} --device {params.model[device]} {params.model[trust]} --task {params.task} {params.vqa} {params.data}"
        " --instruction {params.prompt:q} --limit {params.limit} --batch-size {params.batch_size}"
        " --max-new-tokens {params.max_new_tokens} --header {params.header:q} --threads {threads} --out {output:q} > {log:q} 2>&1"


rule steer:
    input:
        model=steer_model_inputs,
        data=steer_data_inputs,
        vector="results/steering/{name}/layer{layer}/vector.safetensors",
        facts="results/steering/{name}/layer{layer}/vector.json",
        baseline="results/steering/{name}/unsteered.json",
    output:
        "results/steering/{name}/layer{layer}/steer.json",
    params:
        model=steer_model_params,
        task=steer_setting("task"),
        vqa=steer_vqa("val"),
        data=steer_data_args,
        limit=steer_setting("n_eval"),
        batch_size=steer_setting("batch_size"),
        max_new_tokens=steer_setting("max_new_tokens"),
        alphas=steer_setting("alphas"),
        apply=steer_setting("apply"),
        seed=steer_setting("seed"),
        ends=steer_ends,
        header=steer_header,
        prompt=config["prompt"],
        code_version=CODE_VERSION,
    log:
        "results/steering/{name}/logs/steer_layer{layer}.log",
    threads: INFERENCE_THREADS
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts steer --adapter {params.model[adapter]} --model {params.model[path]:q}"
        " --dtype {params.model[dtype]} --device {params.model[device]} {params.model[trust]} --task {params.task} {params.vqa} {params.data}"
        " --instruction {params.prompt:q} --limit {params.limit} --batch-size {params.batch_size}"
        " --max-new-tokens {params.max_new_tokens} --vector {input.vector:q} --baseline {input.baseline:q}"
        " --alphas {params.alphas:q} --apply {params.apply} --seed {params.seed} {params.ends}"
        " --header {params.header:q} --threads {threads} --out {output:q} > {log:q} 2>&1"


rule steering_report:
    input:
        runs=steer_runs,
        baseline="results/steering/{name}/unsteered.json",
    output:
        report(
            "results/steering/{name}/report.html",
            caption="../report/steering.rst",
            category="Steering reports",
            labels={"name": "{name}"},
        ),
    params:
        code_version=CODE_VERSION,
    log:
        "results/steering/{name}/logs/report.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts steering-report --runs {input.runs:q} --baseline {input.baseline:q} --out {output:q} > {log:q} 2>&1"
