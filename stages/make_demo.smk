# make_demo: generate the synthetic dataset of a "demo"-format dataset into results/make_demo/<dataset>/
# (its `root` in the config must point there, as the default does).


rule make_demo:
    output:
        split=f"{RESULTS}/make_demo/{{dataset}}/split.csv",
        classes=f"{RESULTS}/make_demo/{{dataset}}/classes.txt",
        flow=f"{RESULTS}/make_demo/{{dataset}}/true_flow.h5",
    log:
        f"{LOGS}/make_demo/{{dataset}}.log",
    params:
        config=CONFIG_FILE,
    shell:
        "prep-cli make-demo --config {params.config} --dataset {wildcards.dataset}"
        " --out {RESULTS}/make_demo/{wildcards.dataset} > {log} 2>&1"
