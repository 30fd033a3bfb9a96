# report: results/report/<dataset>/report.md with its PNGs, from the evaluation, the training logs and the
# first flow and motion-vector shards.


def report_inputs(wildcards):
    name = wildcards.dataset
    streams = dataset_settings(name).evaluate.streams
    return ([evaluate_output("metrics", name)] + [train_output(m, name) for m in streams]
            + shard_files_of("extract_flow", name)[:1] + shard_files_of("extract_mv", name)[:1]
            + [linear_output(s, name) for s in feature_sets(name)])


rule report:
    input:
        report_inputs,
    output:
        report=f"{stage_dir('report')}/{paths.REPORT_FILE}",
    log:
        str(paths.dataset_log(LOGS, "report", "{dataset}")),
    params:
        config=stage_config("report"),
    shell:
        "prep-cli report --config {params.config} --dataset {wildcards.dataset} > {log} 2>&1"


TARGET_FUNCTIONS.append(lambda name: [f"{stage_dir('report', name)}/{paths.REPORT_FILE}"])
