#!/usr/bin/env python3
"""Time pagrt (tract + pagrt's sparse kernels) and onnxruntime on the same ONNX model, same input,
same thread count, interleaved in one run, and print per thread count and compute mode: both
times, their ratio, pagrt's speedup over the first mode (ρ=1 by default), the ideal speedup from
executed MACs (the model's dense MACs minus what the gated blocks and MultiPool skipped, as
pagrt's telemetry counts them) and the fraction of that ideal reached; then pagrt's and
onnxruntime's scaling from 1 thread to more. Prints the CPU model first.

    python3 scripts/compare_onnxruntime.py [--model models/shipped/pag_multitask.onnx] [--threads 1 2] [--modes dense 0.5 native]

pagrt is timed twice per frame: the whole frame (`pagrt ms`: normalise the u8 image, run the
model, argmax and layout of the outputs) and the model alone (`model ms`: the tract plan with
pagrt's operators, what onnxruntime's bare session.run on a ready float tensor measures). Needs
`pip install onnxruntime numpy` and a release build of `pag`.

With `--qdq PATH` (an int8 QDQ model from `pag calibrate`), onnxruntime and pagrt also run that
model in the same rounds: `ORT i8 ms` and `i8/f32` (onnxruntime's int8 time over its f32 time),
`pagrt i8` and `i8 model` (pagrt's whole frame and model alone on its int8 kernels), `f32/i8`
(pagrt's f32 model time over its int8 model time: the int8 speedup) and `i8/ORT i8` (pagrt's int8
model time over onnxruntime's). The script first reports how many of the QDQ model's convs
onnxruntime fused into QLinearConv (from the optimised graph it saves)."""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def rho_of(mode):
    fixed = {"dense": 1.0, "native": 0.0}
    return fixed[mode] if mode in fixed else float(mode.removeprefix("budget:"))


def time_ort(sess, feed, frames):
    for _ in range(3):
        sess.run(None, feed)
    ms = []
    for _ in range(frames):
        t = time.perf_counter()
        sess.run(None, feed)
        ms.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ms)


def ort_session(model, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def fused_op_counts(model):
    """Op types of onnxruntime's optimised graph of `model` (QDQ convs fuse into QLinearConv)."""
    import tempfile
    from collections import Counter
    import onnx
    with tempfile.TemporaryDirectory() as d:
        so = ort.SessionOptions()
        so.optimized_model_filepath = os.path.join(d, "opt.onnx")
        so.log_severity_level = 3
        ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        return Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=os.path.join(ROOT, "models/shipped/pag_multitask.onnx"))
    p.add_argument("--modes", nargs="+", default=["dense", "0.7", "0.5", "0.25", "native"])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pag", default=os.path.join(ROOT, "target/release/pag"))
    p.add_argument("--qdq", help="also time this int8 QDQ model (pag calibrate) in onnxruntime")
    a = p.parse_args()
    if not os.path.exists(a.pag):
        sys.exit(f"{a.pag} not found: run `cargo build --release` first")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; onnxruntime {ort.__version__}")
    sessions = {t: ort_session(a.model, t) for t in a.threads}
    any_sess = sessions[a.threads[0]]
    shape = any_sess.get_inputs()[0].shape
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    has_rho = any(i.name == "rho" for i in any_sess.get_inputs())
    print(f"model {os.path.relpath(a.model)}, input {shape}, {a.rounds} interleaved rounds of {a.frames} frames")
    qsessions = {}
    if a.qdq:
        ops = fused_op_counts(a.qdq)
        print(f"int8 model {os.path.relpath(a.qdq)}: onnxruntime's optimised graph has {ops['QLinearConv']} QLinearConv, "
              f"{ops['Conv']} float Conv, {ops['QuantizeLinear']} QuantizeLinear, {ops['DequantizeLinear']} DequantizeLinear")
        qsessions = {t: ort_session(a.qdq, t) for t in a.threads}
    results = {}
    for threads in a.threads:
        print(f"\n{threads} thread(s) each")
        print(f"{'mode':<10} {'pagrt ms':>9} {'model ms':>9} {'ORT ms':>9} {'pagrt/ORT':>10} {'model/ORT':>10} {'GMAC':>7} {'speedup':>8} {'ideal':>7} {'of ideal':>9}"
              + (f" {'ORT i8 ms':>10} {'i8/f32':>7} {'pagrt i8':>9} {'i8 model':>9} {'f32/i8':>7} {'i8/ORT i8':>10}" if qsessions else ""))
        base = None
        for mode in a.modes:
            feed = {"image": x, **({"rho": np.array([rho_of(mode)], np.float32)} if has_rho else {})}
            ours, model, theirs, int8, ours8, model8 = [], [], [], [], [], []

            def pag_bench(path):
                out = subprocess.run([a.pag, "bench", "--model", path, "--mode", mode, "--frames", str(a.frames),
                                      "--rounds", "1", "--threads", str(threads), "--json"],
                                     check=True, capture_output=True, text=True)
                return json.loads(out.stdout.strip().splitlines()[-1])

            for _ in range(a.rounds):
                row = pag_bench(a.model)
                ours.append(row["median_ms"])
                model.append(row["inference_median_ms"])
                theirs.append(time_ort(sessions[threads], feed, a.frames))
                if qsessions:
                    int8.append(time_ort(qsessions[threads], feed, a.frames))
                    row8 = pag_bench(a.qdq)
                    ours8.append(row8["median_ms"])
                    model8.append(row8["inference_median_ms"])
            o, t, macs = statistics.median(ours), statistics.median(theirs), row["executed_macs"]
            mo = statistics.median(model)
            results[(threads, mode)] = (o, mo, t)
            base = base or (o, macs)
            speedup, ideal = base[0] / o, base[1] / macs
            q = ""
            if int8:
                t8, o8, m8 = statistics.median(int8), statistics.median(ours8), statistics.median(model8)
                q = f" {t8:10.2f} {t8 / t:7.2f} {o8:9.2f} {m8:9.2f} {mo / m8:7.2f} {m8 / t8:10.2f}"
            print(f"{mode:<10} {o:9.2f} {mo:9.2f} {t:9.2f} {o / t:10.2f} {mo / t:10.2f} {macs / 1e9:7.3f} {speedup:8.2f} {ideal:7.2f} {speedup / ideal:9.2f}" + q)
    if len(a.threads) > 1:
        t0 = a.threads[0]
        print(f"\nscaling from {t0} thread(s) (model alone for pagrt, session.run for onnxruntime): time at t0 / time at t")
        for threads in a.threads[1:]:
            for mode in a.modes:
                (_, m0, r0), (_, m1, r1) = results[(t0, mode)], results[(threads, mode)]
                print(f"  {threads} threads {mode:<10} pagrt {m0 / m1:5.2f}×   onnxruntime {r0 / r1:5.2f}×")


if __name__ == "__main__":
    main()
