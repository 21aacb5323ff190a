# mmconcepts: what does a vision-language model represent about a word?
# The stages live in workflow/rules/; every rule calls `python -m mmconcepts <stage>`.
from snakemake.utils import min_version, validate

min_version("9.12")


configfile: os.path.join(workflow.basedir, "config.yaml")


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/world.smk"
include: "workflow/rules/captions.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/dictionary.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        default_reports(),
