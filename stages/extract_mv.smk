# extract_mv: one job per shard: re-encoded MPEG-4 videos -> results/extract_mv/<dataset>/shard-K.h5 (modality
# "mv": per frame frame_type / gop_index / gop_pos, motion vectors and residuals, accumulated and not, with
# CoViAR's uint8 encodings), shard-K.iframes.h5 (the I-frames as JPEG, one per GOP) and shard-K.failures.json.
# Each video is decoded once, in one process (the per-video arrays are large; shards run in parallel).


rule extract_mv:
    input:
        done=f"{RESULTS}/reencode/{{dataset}}/shard-{{shard}}.done.json",
        folder=f"{RESULTS}/reencode/{{dataset}}/shard-{{shard}}",
    output:
        shard=f"{RESULTS}/extract_mv/{{dataset}}/shard-{{shard}}.h5",
        iframes=f"{RESULTS}/extract_mv/{{dataset}}/shard-{{shard}}.iframes.h5",
        failures=f"{RESULTS}/extract_mv/{{dataset}}/shard-{{shard}}.failures.json",
    log:
        f"{LOGS}/extract_mv/{{dataset}}/shard-{{shard}}.log",
    threads: 1
    params:
        config=CONFIG_FILE,
        manifest=lambda wc: manifest_path(wc.dataset),
    shell:
        "prep-cli extract-mv --config {params.config} --dataset {wildcards.dataset} --manifest {params.manifest}"
        " --shard {wildcards.shard} --reencoded {RESULTS}/reencode/{wildcards.dataset}"
        " --out {RESULTS}/extract_mv/{wildcards.dataset} --no-progress > {log} 2>&1"


TARGET_FUNCTIONS.append(lambda name: stage_shards("extract_mv", name, (".h5", ".iframes.h5", ".failures.json")))


# PNGs of the first video of shard 0 (vectors and residuals, both modes) for the report.
rule mv_visualize:
    input:
        shard=f"{RESULTS}/extract_mv/{{dataset}}/shard-00000.h5",
        iframes=f"{RESULTS}/extract_mv/{{dataset}}/shard-00000.iframes.h5",
    output:
        directory(f"{RESULTS}/extract_mv/{{dataset}}/png"),
    log:
        f"{LOGS}/extract_mv/{{dataset}}/mv_visualize.log",
    shell:
        "prep-cli mv-visualize {input.shard} --frames 12 --out {output} > {log} 2>&1"


TARGET_FUNCTIONS.append(lambda name: [f"{RESULTS}/extract_mv/{name}/png"])
