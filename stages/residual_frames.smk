# residual_frames: one job per shard: RGB shard (25 fps frames) -> |F_i - F_i+1| at 170x128 as chunked,
# gzip-compressed uint8 arrays in results/residual_frames/<dataset>/shard-K.h5 (modality "resframe").


rule residual_frames:
    input:
        rgb=f"{RESULTS}/decode/{{dataset}}/shard-{{shard}}.h5",
    output:
        shard=f"{RESULTS}/residual_frames/{{dataset}}/shard-{{shard}}.h5",
        failures=f"{RESULTS}/residual_frames/{{dataset}}/shard-{{shard}}.failures.json",
    log:
        f"{LOGS}/residual_frames/{{dataset}}/shard-{{shard}}.log",
    threads: 1
    params:
        config=CONFIG_FILE,
        manifest=lambda wc: manifest_path(wc.dataset),
    shell:
        "prep-cli residual-frames --config {params.config} --dataset {wildcards.dataset}"
        " --manifest {params.manifest} --shard {wildcards.shard} --rgb {RESULTS}/decode/{wildcards.dataset}"
        " --out {RESULTS}/residual_frames/{wildcards.dataset} --no-progress > {log} 2>&1"


TARGET_FUNCTIONS.append(lambda name: stage_shards("residual_frames", name))
