# extract_mv: one job per shard: re-encoded MPEG-4 videos -> results/extract_mv/<dataset>/shard-K.h5 (modality
# "mv": per frame frame_type / gop_index / gop_pos, motion vectors and residuals, accumulated and not, with
# CoViAR's uint8 encodings), shard-K.iframes.h5 (the I-frames as JPEG, one per GOP) and shard-K.failures.json.
# Each video is decoded once, in one process (the per-video arrays are large; shards run in parallel).


rule extract_mv:
    input:
        done=stage_output("reencode", "done"),
        folder=stage_output("reencode", "folder"),
    output:
        **stage_outputs("extract_mv"),
    log:
        stage_log("extract_mv"),
    threads: 1
    params:
        config=stage_config("extract_mv"),
        manifest=lambda wc: manifest_path(wc.dataset),
    shell:
        prep_cli("extract_mv")


TARGET_FUNCTIONS.append(lambda name: stage_targets("extract_mv", name))


# PNGs of the first video of shard 0 (vectors and residuals, both modes) for the report.
rule visualize_mv:
    input:
        shard=stage_output("extract_mv", "shard", shard="00000"),
        iframes=stage_output("extract_mv", "iframes", shard="00000"),
    output:
        directory(f"{stage_dir('extract_mv')}/{paths.PICTURES_FOLDER}"),
    log:
        f"{paths.log_dir(LOGS, 'extract_mv', '{dataset}')}/{paths.PICTURES_LOG}",
    shell:
        "prep-cli visualize-mv {input.shard} --out {output} > {log} 2>&1"


TARGET_FUNCTIONS.append(lambda name: [f"{stage_dir('extract_mv', name)}/{paths.PICTURES_FOLDER}"])
