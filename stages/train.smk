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
        config=CONFIG_FILE,
    wildcard_constraints:
        method="|".join(METHODS),
    shell:
        "prep-cli train --config {params.config} --dataset {wildcards.dataset} --method {wildcards.method}"
        " --resume --no-progress > {log} 2>&1"
