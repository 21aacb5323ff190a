# Mutual knowledge (Sammani & Deligiannis): CLIP's zero-shot decisions explained by the concepts its
# vision and language encoders share. The tiny CLIP family is trained on the world for it; each
# (entry, CLIP) job explains every method at once, and one report compares the entry's CLIPs.


rule train_clip_family:
    input:
        WORLD_DIR,
    output:
        directory(f"{FAMILY_DIR}/w{{width}}"),
    wildcard_constraints:
        width=r"\d+",
    params:
        train=json.dumps(config["clip_family"], sort_keys=True),
        code_version=CODE_VERSION,
    log:
        "results/logs/train_clip_family_w{width}.log",
    threads: 1  # two widths train at once: two one-thread runs use the cores better than one after the other
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts train-clip-family --world {input:q} --width {wildcards.width} --out {output:q}"
        " --threads {threads} --params {params.train:q} > {log:q} 2>&1"


rule mutual:
    input:
        unpack(mutual_inputs),
    output:
        directory("results/mutual/{entry}/{clip}"),
    wildcard_constraints:
        entry=one_of(config["mutual"]),
        clip=one_of(mutual_clip_names()),
    params:
        dataset=mutual_dataset,
        model=mutual_model,
        settings=lambda wildcards: json.dumps(config["mutual"][wildcards.entry].get("settings", {}), sort_keys=True),
        header=lambda wildcards: json.dumps({"entry": wildcards.entry}),
        code_version=CODE_VERSION,
    log:
        "results/mutual/{entry}/logs/{clip}.log",
    threads: 1  # the shapes family's jobs are mostly start-up: two run at once
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts mutual --dataset {params.dataset:q} --model-name {wildcards.clip} --model {params.model:q}"
        " --params {params.settings:q} --header {params.header:q} --threads {threads} --out {output:q} > {log:q} 2>&1"


rule mutual_report:
    input:
        runs=mutual_runs,
        data=mutual_data_inputs,
    output:
        report=report(
            "results/mutual/{entry}/report.html",
            caption="../report/mutual.rst",
            category="Mutual knowledge",
            labels={"entry": "{entry}"},
        ),
        summary="results/mutual/{entry}/summary.json",
    wildcard_constraints:
        entry=one_of(config["mutual"]),
    log:
        "results/mutual/{entry}/logs/report.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts mutual-report --name {wildcards.entry} --runs {input.runs:q}"
        " --summary {output.summary:q} --out {output.report:q} > {log:q} 2>&1"
