# manifest: official split files (or the demo's split.csv) -> manifests/<dataset>.tsv.
# A checkpoint: the number of shards of every later stage is read from its output.


def manifest_inputs(wildcards):
    ds = dataset_settings(wildcards.dataset).dataset
    return [f"{ds.root}/split.csv", f"{ds.root}/classes.txt"] if ds.format == "demo" else []


checkpoint manifest:
    input:
        manifest_inputs,
    output:
        manifest=f"{SETTINGS.manifests}/{{dataset}}.tsv",
    log:
        f"{LOGS}/manifest/{{dataset}}.log",
    params:
        config=CONFIG_FILE,
    shell:
        "prep-cli manifest --config {params.config} --dataset {wildcards.dataset} --out {output.manifest}"
        " > {log} 2>&1"
