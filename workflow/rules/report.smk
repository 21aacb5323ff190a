# One HTML report per model and word, gathering every layer, method and K.


rule report:
    input:
        grounding=report_grounding,
        metrics=report_metrics,
        train="results/{model}/{token}/samples/train.json",
        test="results/{model}/{token}/samples/test.json",
    output:
        report(
            "results/{model}/{token}/report.html",
            caption="../report/report.rst",
            category="Concept reports",
            labels={"model": "{model}", "token": "{token}"},
        ),
    params:
        header=report_header,
        focus=report_focus,
        code_version=CODE_VERSION,
    log:
        "results/{model}/{token}/logs/report.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts report --grounding {input.grounding:q} --metrics {input.metrics:q}"
        " --train-samples {input.train:q} --test-samples {input.test:q} --header {params.header:q}"
        " --focus {params.focus:q} --out {output:q} > {log:q} 2>&1"


rule index:
    input:
        default_reports(),
    output:
        "results/index.html",
    log:
        "results/logs/index.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/mmconcepts.yaml"
    shell:
        "python -m mmconcepts index --reports {input:q} --out {output:q} > {log:q} 2>&1"
