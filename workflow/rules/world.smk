# The embedded default: a generated world and two tiny models trained on it.


rule world:
    output:
        directory(WORLD_DIR),
    params:
        world=json.dumps(config["world"], sort_keys=True),
        code_version=CODE_VERSION,
    log:
        "results/logs/world.log",
    threads: 2  # every other job waits for the world: one drawing process per core
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts world --out {output:q} --params {params.world:q} --workers {threads} > {log:q} 2>&1"


rule train_lmm:
    input:
        WORLD_DIR,
    output:
        directory(LMM_DIR),
    params:
        # The tiny model learns the prompt the captions rule will ask with.
        train=json.dumps({"prompt": config["prompt"], **config["train_lmm"]}, sort_keys=True),
        code_version=CODE_VERSION,
    log:
        "results/logs/train_lmm.log",
    threads: 2
    priority: 1  # the longest job, and most of the DAG waits for it: start it before the one-thread trainings
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts train-lmm --world {input:q} --out {output:q} --threads {threads}"
        " --params {params.train:q} > {log:q} 2>&1"


rule train_clip:
    input:
        WORLD_DIR,
    output:
        directory(CLIP_DIR),
    params:
        train=json.dumps(config["train_clip"], sort_keys=True),
        code_version=CODE_VERSION,
    log:
        "results/logs/train_clip.log",
    # One thread: it then trains beside the CLIP family's widest member instead of after it (measured
    # alone: 168 s on one thread, 112 s on two, so a core-second saved too)
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts train-clip --world {input:q} --out {output:q} --threads {threads}"
        " --params {params.train:q} > {log:q} 2>&1"
