# evaluate: every stream of evaluate.streams (trained models) on the test split, and the fusions of
# evaluate.fusions -> results/evaluate/<dataset>/metrics.json and scores.h5.


def evaluate_inputs(wildcards):
    streams = dataset_settings(wildcards.dataset).evaluate.streams
    return [train_output(m, wildcards.dataset) for m in streams]


def evaluate_output(kind, dataset="{dataset}"):
    return f"{stage_dir('evaluate', dataset)}/{paths.EVALUATE_FILES[kind]}"


rule evaluate:
    input:
        evaluate_inputs,
    output:
        metrics=evaluate_output("metrics"),
        scores=evaluate_output("scores"),
    log:
        str(paths.dataset_log(LOGS, "evaluate", "{dataset}")),
    threads: 2
    params:
        config=stage_config("evaluate"),
    shell:
        "prep-cli evaluate --config {params.config} --dataset {wildcards.dataset} > {log} 2>&1"
