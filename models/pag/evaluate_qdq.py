"""Int8 QDQ models (`pag calibrate`) against their float model, through onnxruntime, on
held-out scenes: accuracy at ρ = 1 and 0.5 (the metrics of `pag.evaluate`) and how exactly the
PAG decisions survive quantization — budget masks at ρ = 0.5 (every gated block's `mask`) and
the MultiPool branch choice (argmax of each `selector`), pixel for pixel.

    cd models && python3 -m pag.evaluate_qdq --data data/heldout_v2 --float shipped/pag_multitask.onnx \
        --qdq percentile=shipped/pag_multitask_int8.onnx [entropy=/tmp/e.onnx …] [--json out.json]

Goals (issue #12): mIoU and δ<1.25 within 1.0 point of float, normals within 1°, budget masks
identical on ≥ 99.9 % of pixels.
"""
import argparse
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

from .data import SceneSet, normalise_image
from .evaluate import Metrics

RHOS = [("1.0", 1.0), ("0.5", 0.5)]


def session(model_bytes, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def decision_tensors(model):
    """The mask tensors of the gated blocks and the selector tensors of the MultiPools, as
    named in this model's metadata (a QDQ model may rename a quantized selector)."""
    meta = {p.key: p.value for p in model.metadata_props}
    masks = [b["mask"] for b in json.loads(meta.get("pag.gated_blocks", "[]"))]
    selectors = [m["selector"] for m in json.loads(meta.get("pag.multipools", "[]"))]
    return masks, selectors


def with_outputs(path, names):
    m = onnx.load(path)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    return m.SerializeToString()


def run_all(path, data, threads, n_masks):
    """Metrics per ρ and, at ρ = 0.5 on the first `n_masks` scenes, the decisions."""
    model = onnx.load(path)
    masks, selectors = decision_tensors(model)
    sess = session(with_outputs(path, masks + selectors), threads)
    k = len(data.meta["class_names"])
    out, decisions = {}, []
    for label, rho in RHOS:
        m = Metrics(k)
        for i in range(len(data)):
            feed = {"image": normalise_image(data.rgb[i]), "rho": np.array([rho], np.float32)}
            res = sess.run(["seg_logits", "depth", "normals"] + masks + selectors, feed)
            m.add(*res[:3], data.label[i], data.depth[i], data.normals[i].astype(np.float32))
            if label == "0.5" and i < n_masks:
                decisions.append(([r > 0.5 for r in res[3:3 + len(masks)]],
                                  [r[0].argmax(0) for r in res[3 + len(masks):]]))
        out[label] = m.summary()
        print(f"  {path} ρ={label}: mIoU {out[label]['mIoU']:.2f}", file=sys.stderr, flush=True)
    return out, decisions


def agreement(a, b):
    """Fraction of pixels (all blocks / all MultiPools pooled) where the decisions agree, and the
    worst block's."""
    res = {}
    for j, key in enumerate(["masks", "multipool"]):
        same = total = 0
        worst = 1.0
        per_block = None
        for (da, db) in zip(a, b):
            per_block = per_block or [[0, 0] for _ in da[j]]
            for blk, (x, y) in enumerate(zip(da[j], db[j])):
                s = int((x == y).sum())
                same, total = same + s, total + x.size
                per_block[blk][0] += s
                per_block[blk][1] += x.size
                worst = min(worst, s / x.size)
        res[key] = {"agree_pct": 100.0 * same / max(total, 1), "worst_frame_block_pct": 100.0 * worst,
                    "per_block_pct": [round(100.0 * s / max(t, 1), 3) for s, t in (per_block or [])]}
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--float", required=True, dest="float_model")
    p.add_argument("--qdq", nargs="+", required=True, help="NAME=PATH of QDQ models")
    p.add_argument("--limit", type=int, help="only the first N scenes")
    p.add_argument("--mask-scenes", type=int, default=200, help="scenes whose ρ=0.5 decisions are compared")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write every number here")
    a = p.parse_args()
    data = SceneSet(a.data, limit=a.limit)
    ref, ref_dec = run_all(a.float_model, data, a.threads, a.mask_scenes)
    rows = {"float": {"metrics": ref}}
    for spec in a.qdq:
        name, path = spec.split("=", 1)
        met, dec = run_all(path, data, a.threads, a.mask_scenes)
        rows[name] = {"metrics": met, "agreement_rho_0.5": agreement(ref_dec, dec)}
    print(f"{len(data)} scenes; onnxruntime {ort.__version__}")
    print("| model | ρ | mIoU | Δ | pixel acc | δ<1.25 | Δ | abs-rel | normals ° | Δ | masks agree % (ρ=0.5) | MultiPool agree % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        for label, _ in RHOS:
            m, f = r["metrics"][label], ref[label]
            ag = r.get("agreement_rho_0.5")
            agm = f"{ag['masks']['agree_pct']:.3f}" if ag and label == "0.5" else ""
            agp = f"{ag['multipool']['agree_pct']:.3f}" if ag and label == "0.5" else ""
            print(f"| {name} | {label} | {m['mIoU']:.2f} | {m['mIoU'] - f['mIoU']:+.2f} | {m['pixel_acc']:.2f} | "
                  f"{m['delta1']:.2f} | {m['delta1'] - f['delta1']:+.2f} | {m['abs_rel']:.4f} | "
                  f"{m['normal_mean_deg']:.2f} | {m['normal_mean_deg'] - f['normal_mean_deg']:+.2f} | {agm} | {agp} |")
    for name, r in rows.items():
        if "agreement_rho_0.5" in r:
            print(f"{name}: mask agreement per gated block at ρ=0.5 (%): {r['agreement_rho_0.5']['masks']['per_block_pct']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
