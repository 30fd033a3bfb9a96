# resframe: one job per shard: RGB shard (25 fps frames) -> residual frames |F_i - F_i+1| at 170x128 as
# chunked, gzip-compressed uint8 arrays in results/resframe/<dataset>/shard-K.h5 (modality "resframe").


rule resframe:
    input:
        rgb=stage_output("decode", "shard"),
    output:
        **stage_outputs("resframe"),
    log:
        stage_log("resframe"),
    threads: 1
    params:
        config=stage_config("resframe"),
        manifest=lambda wc: manifest_path(wc.dataset),
    shell:
        prep_cli("resframe")


TARGET_FUNCTIONS.append(lambda name: stage_targets("resframe", name))
