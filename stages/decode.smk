# decode: one job per shard: videos -> 25 fps RGB JPEG frames in results/decode/<dataset>/shard-K.h5.


rule decode:
    input:
        manifest=lambda wc: manifest_path(wc.dataset),
    output:
        shard=f"{RESULTS}/decode/{{dataset}}/shard-{{shard}}.h5",
        failures=f"{RESULTS}/decode/{{dataset}}/shard-{{shard}}.failures.json",
    log:
        f"{LOGS}/decode/{{dataset}}/shard-{{shard}}.log",
    threads: 2
    params:
        config=CONFIG_FILE,
    shell:
        "prep-cli decode --config {params.config} --dataset {wildcards.dataset} --manifest {input.manifest}"
        " --shard {wildcards.shard} --out {RESULTS}/decode/{wildcards.dataset} --workers {threads}"
        " --no-progress > {log} 2>&1"


TARGET_FUNCTIONS.append(lambda name: stage_shards("decode", name))
