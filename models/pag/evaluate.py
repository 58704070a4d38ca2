"""Accuracy of exported models on held-out scenes, through onnxruntime (what ships is what is
measured), at ρ = 1.0, 0.9, 0.7, 0.5 and native, beside the dense baseline. Writes a model card.

    python -m pag.evaluate --data data/heldout --model shipped/pag_multitask.onnx \
        --baseline shipped/pag_dense_baseline.onnx --card shipped/MODEL_CARD.md
"""
import argparse
import json
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

from .data import SceneSet, normalise_image

RHOS = [("1.0", 1.0), ("0.9", 0.9), ("0.7", 0.7), ("0.5", 0.5), ("native", 0.0)]


class Metrics:
    def __init__(self, k):
        self.k = k
        self.conf = np.zeros((k, k), np.int64)
        self.ratios, self.absrel, self.angles = [], [], []

    def add(self, seg_logits, depth, normals, lab, dep_gt, nor_gt):
        pred = seg_logits[0].argmax(0)
        valid = lab < self.k
        self.conf += np.bincount(lab[valid].astype(np.int64) * self.k + pred[valid],
                                 minlength=self.k * self.k).reshape(self.k, self.k)
        d = depth[0, 0]
        ok = np.isfinite(dep_gt) & (dep_gt > 0)
        self.ratios.append(np.maximum(d[ok] / dep_gt[ok], dep_gt[ok] / d[ok]))
        self.absrel.append(np.abs(d[ok] - dep_gt[ok]) / dep_gt[ok])
        cos = np.clip((normals[0].transpose(1, 2, 0) * nor_gt).sum(-1), -1, 1)
        self.angles.append(np.degrees(np.arccos(cos)).ravel())

    def summary(self):
        tp = np.diag(self.conf).astype(np.float64)
        union = self.conf.sum(0) + self.conf.sum(1) - tp
        present = union > 0
        r, a = np.concatenate(self.ratios), np.concatenate(self.angles)
        return {"mIoU": 100 * float(np.mean(tp[present] / union[present])),
                "pixel_acc": 100 * float(tp.sum() / self.conf.sum()),
                "delta1": 100 * float(np.mean(r < 1.25)), "delta2": 100 * float(np.mean(r < 1.25 ** 2)),
                "delta3": 100 * float(np.mean(r < 1.25 ** 3)),
                "abs_rel": float(np.mean(np.concatenate(self.absrel))),
                "normal_mean_deg": float(a.mean()), "normal_median_deg": float(np.median(a)),
                "within_11_25": 100 * float(np.mean(a < 11.25)), "within_22_5": 100 * float(np.mean(a < 22.5)),
                "within_30": 100 * float(np.mean(a < 30))}


def evaluate(path, data, rho_values, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in sess.get_inputs()}
    k = len(data.meta["class_names"])
    results = {}
    for label, rho in rho_values:
        m, t0 = Metrics(k), time.time()
        for i in range(len(data)):
            feed = {"image": normalise_image(data.rgb[i])}
            if "rho" in inputs:
                feed["rho"] = np.array([rho], np.float32)
            seg, depth, normals = sess.run(["seg_logits", "depth", "normals"], feed)
            m.add(seg, depth, normals, data.label[i], data.depth[i], data.normals[i].astype(np.float32))
        results[label] = m.summary()
        print(f"  {path} ρ={label}: mIoU {results[label]['mIoU']:.1f} ({time.time() - t0:.0f} s)",
              file=sys.stderr, flush=True)
    return results


def native_density(path, data, n=20):
    """Mean fraction of active pixels per gated layer in native mode (read from the masks)."""
    model = onnx.load(path)
    blocks = json.loads({p.key: p.value for p in model.metadata_props}["pag.gated_blocks"])
    for b in blocks:
        model.graph.output.add(name=b["mask"])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    dens = np.zeros(len(blocks))
    for i in range(min(n, len(data))):
        outs = sess.run([b["mask"] for b in blocks], {"image": normalise_image(data.rgb[i]),
                                                      "rho": np.array([0.0], np.float32)})
        dens += [o.mean() for o in outs]
    return (dens / min(n, len(data))).tolist(), [b["name"] for b in blocks]
