# mmconcepts: what does a vision-language model represent about a word?
# The stages live in workflow/rules/; every rule calls `python -m mmconcepts <stage>`.
from snakemake.utils import min_version, validate

from mmconcepts.config_checks import coerce_config

min_version("9.12")


configfile: os.path.join(workflow.basedir, "config.yaml")


# --config 'decomposition={k: 30}' arrives as strings; make them what the schema asks for.
coerce_config(config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml"))
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/world.smk"
include: "workflow/rules/captions.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/dictionary.smk"
include: "workflow/rules/shift.smk"
include: "workflow/rules/steering.smk"
include: "workflow/rules/mutual.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "results/index.html",
