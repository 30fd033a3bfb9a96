# motionprep workflow. `snakemake --cores N all` runs every stage for config["dataset"] (the demo by default).
# The rules live in stages/<stage>.smk, one topic per file; each calls `prep-cli <stage>` on one shard.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "pipeline/schemas/config.schema.yaml")


include: "stages/common.smk"
include: "stages/make_demo.smk"
include: "stages/manifest.smk"
include: "stages/decode.smk"
include: "stages/extract_flow.smk"
include: "stages/reencode.smk"
include: "stages/extract_mv.smk"
include: "stages/resframe.smk"
include: "stages/train.smk"
include: "stages/evaluate.smk"
include: "stages/extract_features.smk"
include: "stages/report.smk"


rule all:
    input:
        all_targets,
    default_target: True
