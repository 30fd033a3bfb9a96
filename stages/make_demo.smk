# make_demo: generate the synthetic dataset of a "demo"-format dataset into results/make_demo/<dataset>/
# (its `root` in the config must point there, as the default does).


rule make_demo:
    output:
        **{k: f"{stage_dir('make_demo')}/{name}" for k, name in paths.DEMO_FILES.items()},
    log:
        str(paths.dataset_log(LOGS, "make_demo", "{dataset}")),
    params:
        config=CONFIG_FILE,
    shell:
        "prep-cli make-demo --config {params.config} --dataset {wildcards.dataset}"
        " --out " + stage_dir("make_demo", "{wildcards.dataset}") + " > {log} 2>&1"
