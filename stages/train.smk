# train: one job per method: the method's shards (and, for mers / mars / d3d, the trained flow teacher) ->
# results/train/<dataset>/<method>/model.pt, with last.pt, log.jsonl, config.json and split.json beside it.
from pipeline.train import METHODS


def shard_files_of(stage, name):
    return [stage_output(stage, "shard", name, k) for k in shard_ids(name)]


def train_inputs(wildcards):
    method = METHODS[wildcards.method]
    files = [f for mod in method.loads for f in shard_files_of(SOURCE_STAGE[mod], wildcards.dataset)]
    for before in (method.teacher, method.init):
        if before:
            files.append(train_output(before, wildcards.dataset))
    return sorted(set(files))


def train_output(method="{method}", dataset="{dataset}"):
    return str(paths.train_dir(RESULTS, dataset, method) / paths.TRAIN_FILES["model"])


rule train:
    input:
        train_inputs,
    output:
        model=train_output(),
    log:
        str(paths.log_dir(LOGS, "train", "{dataset}")) + "/{method}.log",
    threads: 2
    params:
        config=stage_config("train"),
    wildcard_constraints:
        method="|".join(METHODS),
    shell:
        "prep-cli train --config {params.config} --dataset {wildcards.dataset} --method {wildcards.method}"
        " --resume --no-progress > {log} 2>&1"


def linear_output(feature_set="{set}", dataset="{dataset}"):
    return str(paths.linear_dir(RESULTS, dataset, feature_set) / paths.TRAIN_FILES["model"])


def linear_inputs(wildcards):
    return [stage_output("extract_features", "shard", wildcards.dataset, k, sub=wildcards.set)
            for k in shard_ids(wildcards.dataset)]


# the linear probe of a feature set (train --method linear): results/train/<dataset>/linear_<set>/model.pt and
# metrics.json, from every shard of results/extract_features/<dataset>/<set>/
rule train_linear:
    input:
        linear_inputs,
    output:
        model=linear_output(),
        metrics=str(paths.linear_dir(RESULTS, "{dataset}", "{set}") / paths.TRAIN_FILES["metrics"]),
    log:
        str(paths.log_dir(LOGS, "train", "{dataset}")) + "/linear_{set}.log",
    params:
        config=stage_config("train"),
    shell:
        "prep-cli train --config {params.config} --dataset {wildcards.dataset} --method linear"
        " --features {wildcards.set} --no-progress > {log} 2>&1"
