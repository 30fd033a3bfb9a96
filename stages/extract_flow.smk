# extract_flow: one job per shard: RGB shard -> TV-L1 flow shard (x/y grayscale JPEGs) in
# results/extract_flow/<dataset>/shard-K.h5, with the shard's failure report beside it.
# The opencv backend spreads the shard's videos over {threads} worker processes (one OpenCV thread each);
# the torch backend on CUDA asks for one unit of the `gpu` resource (run with `--resources gpu=<number of GPUs>`);
# with several GPUs visible, shard K runs on cuda:(K mod number of GPUs).


def _flow_uses_gpu(wildcards):
    s = dataset_settings(wildcards.dataset).extract_flow
    return 1 if s.backend == "torch" and s.device.startswith("cuda") else 0


rule extract_flow:
    input:
        rgb=stage_output("decode", "shard"),
    output:
        **stage_outputs("extract_flow"),
    log:
        stage_log("extract_flow"),
    threads: 8
    resources:
        gpu=_flow_uses_gpu,
    params:
        config=stage_config("extract_flow"),
        manifest=lambda wc: manifest_path(wc.dataset),
    shell:
        prep_cli("extract_flow", " --workers {threads}")


TARGET_FUNCTIONS.append(lambda name: stage_targets("extract_flow", name))
