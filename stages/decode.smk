# decode: one job per shard: videos -> 25 fps RGB JPEG frames in results/decode/<dataset>/shard-K.h5.


rule decode:
    input:
        manifest=lambda wc: manifest_path(wc.dataset),
    output:
        **stage_outputs("decode"),
    log:
        stage_log("decode"),
    threads: 2
    params:
        config=stage_config("decode"),
        manifest=lambda wc: manifest_path(wc.dataset),
    shell:
        prep_cli("decode", " --workers {threads}")


TARGET_FUNCTIONS.append(lambda name: stage_targets("decode", name))
