# reencode: one job per shard: source videos -> MPEG-4 Part 2 (GOP 12, no B-frames, q 1, 25 fps, 340x256)
# in results/reencode/<dataset>/shard-K/<video>.avi, checked picture by picture. The done-marker
# shard-K.done.json (written last) lists the files and the parameters; shard-K.failures.json the videos
# that could not be re-encoded (extract_mv carries them into its own failure report).


rule reencode:
    input:
        manifest=lambda wc: manifest_path(wc.dataset),
    output:
        **stage_outputs("reencode"),
    log:
        stage_log("reencode"),
    threads: 2
    params:
        config=stage_config("reencode"),
        manifest=lambda wc: manifest_path(wc.dataset),
    shell:
        prep_cli("reencode", " --workers {threads}")
