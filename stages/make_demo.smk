# make_demo: generate the synthetic dataset of a "demo"-format dataset into its root (the config's `root`,
# by default results/make_demo/<dataset>), for the one dataset this workflow runs.


if SETTINGS.dataset.format == "demo":

    rule make_demo:
        output:
            **{k: f"{SETTINGS.dataset.root}/{name}" for k, name in paths.DEMO_FILES.items()},
        log:
            str(paths.dataset_log(LOGS, "make_demo", DATASET)),
        params:
            config=stage_config("make_demo"),
        shell:
            f"prep-cli make-demo --config {{params.config}} --dataset {DATASET} --out {SETTINGS.dataset.root}"
            " > {log} 2>&1"
