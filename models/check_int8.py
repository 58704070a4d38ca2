#!/usr/bin/env python3
"""CI check of the shipped int8 model (`pag calibrate`, QDQ format in CONTRACT.md) through
onnxruntime: it loads, onnxruntime fuses every quantized conv into QLinearConv, and on the
golden inputs its outputs stay close to the float model's golden outputs (label agreement,
depth and normals). Needs onnxruntime and numpy."""
import json
import os
import sys
import tempfile

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "shipped", "pag_multitask_int8.onnx")
# Bounds with margin over what was measured on the three golden cases (worst case: scene1 at
# ρ = 0.5, where some budget-mask pixels flip): labels agree on ≥ 99.60 % of pixels, depth median
# relative difference ≤ 2.71 %, normals median ≤ 1.49°.
MIN_LABEL_AGREEMENT = 0.99
MAX_DEPTH_MEDIAN_REL = 0.05
MAX_NORMALS_MEDIAN_DEG = 3.0


def main():
    so = ort.SessionOptions()
    tmp = tempfile.mkdtemp()
    so.optimized_model_filepath = os.path.join(tmp, "opt.onnx")
    so.log_severity_level = 3
    sess = ort.InferenceSession(MODEL, so, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    quant = json.loads(meta["pag.quantization"])
    assert meta["pag.contract_version"] == "2", meta["pag.contract_version"]
    assert quant["format"] == "qdq", quant
    opt = open(so.optimized_model_filepath, "rb").read()
    fused = opt.count(b"QLinearConv")
    print(f"int8 model: method {quant['method']}, kept float {quant['kept_float']}; "
          f"onnxruntime's optimised graph mentions QLinearConv {fused} times")
    failed = 0
    if fused < 36:
        print("FAIL fewer than the 36 quantized convs fused into QLinearConv")
        failed += 1
    gdir = os.path.join(HERE, "goldens")
    manifest = json.load(open(os.path.join(gdir, "manifest.json")))
    for case in manifest["cases"]:
        d = os.path.join(gdir, case["case"])
        feed = {"image": np.load(os.path.join(d, "input.npy")), "rho": np.load(os.path.join(d, "rho.npy"))}
        seg, depth, normals = sess.run(["seg_logits", "depth", "normals"], feed)
        gseg, gdep, gnor = (np.load(os.path.join(d, f"{n}.npy")) for n in ["seg_logits", "depth", "normals"])
        agree = float((seg.argmax(1) == gseg.argmax(1)).mean())
        rel = float(np.median(np.abs(depth - gdep) / np.abs(gdep)))
        deg = float(np.median(np.degrees(np.arccos(np.clip((normals * gnor).sum(1), -1, 1)))))
        ok = agree >= MIN_LABEL_AGREEMENT and rel <= MAX_DEPTH_MEDIAN_REL and deg <= MAX_NORMALS_MEDIAN_DEG
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {case['case']}: labels agree {100 * agree:.2f} %, "
              f"depth median rel. diff {100 * rel:.2f} %, normals median {deg:.2f}° (int8 vs float golden)")
    print(f"int8 check: {'failed' if failed else 'passed'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
