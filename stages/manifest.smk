# manifest: official split files (or the demo's split.csv) -> manifests/<dataset>.tsv.
# A checkpoint: the number of shards of every later stage is read from its output.


def manifest_inputs(wildcards):
    ds = dataset_settings(wildcards.dataset).dataset
    demo = (paths.DEMO_FILES["split"], paths.DEMO_FILES["classes"])
    return [f"{ds.root}/{name}" for name in demo] if ds.format == "demo" else []


checkpoint manifest:
    input:
        manifest_inputs,
    output:
        manifest=str(paths.manifest_path(SETTINGS.manifests, "{dataset}")),
    log:
        str(paths.dataset_log(LOGS, "manifest", "{dataset}")),
    params:
        config=stage_config("manifest"),
    shell:
        "prep-cli manifest --config {params.config} --dataset {wildcards.dataset} --out {output.manifest}"
        " > {log} 2>&1"
