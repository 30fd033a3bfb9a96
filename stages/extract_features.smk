# extract_features: one job per shard and feature set (extract_features.sets): the trained network of the set
# (results/train/<dataset>/<method>/model.pt, or its checkpoint) on shard K of every modality it takes ->
# results/extract_features/<dataset>/<set>/shard-K.h5 (modality "feature") and its failure report.
from pipeline.features.sets import resolve_sets


def feature_sets(name):
    """{set name: FeatureSet} of a dataset's extract_features section."""
    return {fs.name: fs for fs in resolve_sets(dataset_settings(name).extract_features)}


def feature_inputs(wildcards):
    fs = feature_sets(wildcards.dataset)[wildcards.set]
    model = fs.checkpoint or train_output(fs.method, wildcards.dataset)
    loads = METHODS[fs.method].inputs if fs.method in METHODS else ("rgb",)
    shards = [stage_output(SOURCE_STAGE[m], "shard", wildcards.dataset, wildcards.shard) for m in loads]
    return sorted(set(shards)) + [model]


rule extract_features:
    input:
        feature_inputs,
    output:
        **stage_outputs("extract_features"),
    log:
        stage_log("extract_features"),
    threads: 2
    params:
        config=stage_config("extract_features"),
        manifest=lambda wc: manifest_path(wc.dataset),
    wildcard_constraints:
        set=r"[A-Za-z0-9_.-]+",
    shell:
        prep_cli("extract_features")


def feature_targets(name):
    return [stage_output("extract_features", kind, name, k, sub=s) for s in feature_sets(name)
            for k in shard_ids(name) for kind in get_stage("extract_features").writes]


TARGET_FUNCTIONS.append(feature_targets)
