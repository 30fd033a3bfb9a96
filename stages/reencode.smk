# reencode: one job per shard: source videos -> MPEG-4 Part 2 (GOP 12, no B-frames, q 1, 25 fps, 340x256)
# in results/reencode/<dataset>/shard-K/<video>.avi, checked picture by picture. The done-marker
# shard-K.done.json (written last) lists the files and the parameters; shard-K.failures.json the videos
# that could not be re-encoded (extract_mv carries them into its own failure report).


rule reencode:
    input:
        manifest=lambda wc: manifest_path(wc.dataset),
    output:
        folder=directory(f"{RESULTS}/reencode/{{dataset}}/shard-{{shard}}"),
        done=f"{RESULTS}/reencode/{{dataset}}/shard-{{shard}}.done.json",
        failures=f"{RESULTS}/reencode/{{dataset}}/shard-{{shard}}.failures.json",
    log:
        f"{LOGS}/reencode/{{dataset}}/shard-{{shard}}.log",
    threads: 2
    params:
        config=CONFIG_FILE,
    shell:
        "prep-cli reencode --config {params.config} --dataset {wildcards.dataset} --manifest {input.manifest}"
        " --shard {wildcards.shard} --out {RESULTS}/reencode/{wildcards.dataset} --workers {threads}"
        " --no-progress > {log} 2>&1"
