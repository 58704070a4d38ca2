"""Accuracy of exported models on held-out scenes, through onnxruntime (what ships is what is
measured), at ρ = 1.0, 0.9, 0.7, 0.5, 0.25 and native, beside the dense baseline. Writes a model card
(its architecture and training sections follow the model's `pag.architecture` and the
checkpoints' recorded recipe).

    python -m pag.evaluate --data data/heldout --model shipped/pag_multitask.onnx \
        --baseline shipped/pag_dense_baseline.onnx --card shipped/MODEL_CARD.md
"""
import argparse
import os
import json
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

from .data import SceneSet, normalise_image

RHOS = [("1.0", 1.0), ("0.9", 0.9), ("0.7", 0.7), ("0.5", 0.5), ("0.25", 0.25), ("native", 0.0)]
# The goals for the shipped model (ρ=1 absolute, relative mIoU losses, baseline gap).
GOALS = {"mIoU": 80.0, "pixel_acc": 95.0, "delta1": 85.0, "abs_rel": 0.10, "normal_mean_deg": 12.0}
REL_GOALS = {"0.5": 5.0, "0.25": 12.0}



def confusion(pred, lab, k):
    """k × k confusion counts (rows: label, columns: prediction) over pixels labelled < k."""
    valid = lab < k
    return np.bincount(lab[valid].astype(np.int64) * k + pred[valid], minlength=k * k).reshape(k, k)


def miou(conf):
    """Mean IoU in % over the classes present in the labels or the predictions."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    return 100 * float(np.mean(tp[union > 0] / union[union > 0]))


class Metrics:
    def __init__(self, k):
        self.k = k
        self.conf = np.zeros((k, k), np.int64)
        self.ratios, self.absrel, self.angles = [], [], []

    def add(self, seg_logits, depth, normals, lab, dep_gt, nor_gt):
        self.conf += confusion(seg_logits[0].argmax(0), lab, self.k)
        d = depth[0, 0]
        ok = np.isfinite(dep_gt) & (dep_gt > 0)
        self.ratios.append(np.maximum(d[ok] / dep_gt[ok], dep_gt[ok] / d[ok]))
        self.absrel.append(np.abs(d[ok] - dep_gt[ok]) / dep_gt[ok])
        cos = np.clip((normals[0].transpose(1, 2, 0) * nor_gt).sum(-1), -1, 1)
        self.angles.append(np.degrees(np.arccos(cos)).ravel())

    def summary(self):
        tp = np.diag(self.conf).astype(np.float64)
        r, a = np.concatenate(self.ratios), np.concatenate(self.angles)
        return {"mIoU": miou(self.conf),
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


def conv_macs(path):
    """MACs of every Conv in the exported graph, by node name (shapes from ONNX inference)."""
    model = onnx.shape_inference.infer_shapes(onnx.load(path))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(model.graph.value_info) + list(model.graph.output)}
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    out = {}
    for n in model.graph.node:
        if n.op_type == "Conv":
            o = shapes[n.output[0]]
            w = inits[n.input[1]]
            out[n.name] = int(np.prod(o) * np.prod(w[1:]))
    return out


def mac_budget(path, densities, pool_share):
    """Executed MACs if gated branches ran only at active pixels and MultiPool ran only the
    selected branch: dense-graph MACs minus the skipped work. `densities`: per gated block;
    `pool_share`: fraction of pixels per MultiPool branch."""
    macs = conv_macs(path)
    meta = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    blocks = json.loads(meta["pag.gated_blocks"])
    total = sum(macs.values())
    executed = 0.0
    density = {b["name"]: d for b, d in zip(blocks, densities)}
    for name, v in macs.items():
        factor = 1.0
        parts = name.split("/")
        block = parts[2] if len(parts) > 2 else ""
        if block in density and "/gate/" not in name:
            # Inside a gated branch: runs at the gate's active pixels (a gated MultiPool's
            # branch at the active pixels that chose it; shares measured over all pixels).
            factor *= density[block]
        if "/branches." in name:
            i = int(name.split("/branches.")[1].split("/")[0])
            factor *= pool_share[i]
        executed += v * factor
    return total, executed


def pool_shares(path, data, rho, n=20):
    model = onnx.load(path)
    meta = {p.key: p.value for p in model.metadata_props}
    pools = json.loads(meta["pag.multipools"])
    if not pools:
        return None
    sel = pools[0]["selector"]
    model.graph.output.add(name=sel)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    counts = np.zeros(len(pools[0]["dilations"]))
    for i in range(min(n, len(data))):
        feed = {"image": normalise_image(data.rgb[i])}
        if "rho" in {x.name for x in sess.get_inputs()}:
            feed["rho"] = np.array([rho], np.float32)
        s = sess.run([sel], feed)[0]
        counts += np.bincount(s.argmax(1).ravel(), minlength=len(counts))
    return (counts / counts.sum()).tolist()


COLS = [("mIoU", "mIoU"), ("pixel_acc", "pix.acc"), ("delta1", "δ<1.25"), ("delta2", "δ<1.25²"),
        ("delta3", "δ<1.25³"), ("abs_rel", "abs-rel"), ("normal_mean_deg", "mean°"),
        ("within_11_25", "<11.25°"), ("within_22_5", "<22.5°"), ("within_30", "<30°")]


def fmt_row(name, r, gmacs):
    cells = [f"{r[k]:.3f}" if k == "abs_rel" else f"{r[k]:.1f}" for k, _ in COLS]
    return f"| {name} | " + " | ".join(cells) + f" | {gmacs:.3f} |"


ARCH_TEXT = {
    "v1": [
        "- Stem: two stride-2 3×3 convs (3→24→32). Stage 1 at 1/4 (60×80): 2 gated bottlenecks (32→16→16→32).",
        "  Stage 2 at 1/8 (30×40): stride-2 3×3 (32→64) then 3 gated bottlenecks (64→24→24→64).",
        "  Stage 3 at 1/8: 1×1 (64→96), 1 gated bottleneck (dilation 2), a MultiPool bottleneck",
        "  (96→32, one of dilations {0,1,2,4,6,8,10} per pixel, 32→96), 2 gated bottlenecks (dilation 2).",
        "- Decoder: 1×1 laterals from stage 3 (upsampled ×2) and stage 1, a 3×3 fuse conv (32), one 1×1",
        "  head conv to 8 + 1 + 3 channels, bilinear ×4 to the input size. Depth = exp(log-depth) in metres;",
        "  normals L2-normalised, camera optical frame (x right, y down, z forward).",
    ],
    "v2": [
        "- Designed so the gates hold the compute: ~91% of the executed MACs at ρ=1 sit inside gated",
        "  branches (runtime telemetry, `pag info`), so ρ moves the load almost proportionally.",
        "- Lean stem: 3×3 stride 2 (3→16), 2×2 stride 2 (16→48) to 1/4 (60×80). Stage 1: 2 gated bottlenecks",
        "  (48→32→32→48). 2×2 stride 2 (48→96) to 1/8 (30×40). Stage 2: 5 gated bottlenecks (96→64→64→96)",
        "  with dilations 1, 2, MultiPool, 2, 1 — the middle one is a **gated MultiPool** block: its 3×3 is",
        "  one of dilations {0,1,2,4,6,8,10} per pixel, and it runs only where the gate is on (PAG's two",
        "  uses combined; contract version 2).",
        "- Decoder: a 1×1 lateral (96→48), ×2 bilinear, added to stage 1's output; 2 gated refinement",
        "  bottlenecks at 1/4 (48→32→32→48); a 1×1 head to 8 + 1 + 3 channels; bilinear ×4. Depth =",
        "  exp(log-depth) in metres; normals L2-normalised, camera optical frame (x right, y down, z forward).",
    ],
}


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} CPUs)"
    except OSError:
        pass
    return "unknown CPU"


def mount_text(meta):
    m = json.loads(meta["pag.camera_mount"])
    return (f"{m['height_m']:.2f} ± {m['height_play_m']:.2f} m above the floor, pitch {m['pitch_deg']:.0f} ± "
            f"{m['pitch_play_deg']:.0f}°, roll ± {m['roll_play_deg']:.0f}°")


def training_text(cfg, meta, ck):
    half = cfg.get("half_iters") or 0
    done = ck["iterations"] if ck else cfg.get("iters")
    sched = f" (of a {cfg.get('iters')}-iteration schedule: an intermediate checkpoint)" if done != cfg.get("iters") else ""
    out = [f"- Data: {done} iterations{sched} × batch {cfg.get('batch')}"
           + (f" ({half} first on 160×120 renders of the same scenes, then full 240×320 frames)" if half else "")
           + ", random left-right flips (normal x flipped)."]
    for stage in (ck or {}).get("history", []):
        prev = stage["args"]
        phalf = prev.get("half_iters") or 0
        out.append(f"- Stage 1 (iterations 1–{stage['until']}, a {prev.get('iters')}-iteration schedule):"
                   + (f" {phalf} on 160×120 renders, then full frames;" if phalf else "")
                   + f" lr {prev.get('lr')} with poly(0.9) decay, τ annealed 1 → 0.1, ρ ~ U[{prev.get('rho_min')}, 1].")
    if cfg.get("stage2_from") is not None:
        out.append(f"- Stage 2 (iterations {cfg['stage2_from'] + 1}–{cfg.get('iters')}, `--stage2-from`, full frames): a second"
                   f" poly(0.9) learning-rate cycle from {cfg.get('stage2_lr')}, τ held at 0.1"
                   + (f"; {int(100 * cfg['rho_low_share'])}% of the budget batches draw ρ ~ U[{cfg.get('rho_min')},"
                      f" {cfg.get('rho_low_max')}] (more practice at small ρ)" if cfg.get("rho_low_share") else "")
                   + ".")
    if "pag.camera_mount" in meta:
        out.append(f"- Scenes rendered by `pag scenes --mount robot`: camera {mount_text(meta)};"
                   " the training set's seeds never overlap the held-out ones.")
    return out


def baseline_text(bck):
    """The baseline's recipe where it differs from PAG's (a stage 2 of its own)."""
    if not bck or bck["args"].get("stage2_from") is None:
        return []
    b = bck["args"]
    return [f"- The dense baseline: the same stage 1 schedule without gates (ρ = 1 throughout), then the same"
            f" stage 2 (iterations {b['stage2_from'] + 1}–{b.get('iters')}, full frames, a second poly(0.9) learning-rate"
            f" cycle from {b.get('stage2_lr')}): {bck['iterations']} iterations, as many as PAG's."]


def goal_text(key, value):
    goal = GOALS[key]
    ok = value <= goal if key in ("abs_rel", "normal_mean_deg") else value >= goal
    unit = "°" if key == "normal_mean_deg" else ""
    cmp = "≤" if key in ("abs_rel", "normal_mean_deg") else "≥"
    shown = f"{value:.3f}" if key == "abs_rel" else f"{value:.1f}"
    return f"{key} {shown}{unit} (goal {cmp} {goal:g}{unit}: {'met' if ok else 'missed'})"


def main():
    import torch
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--baseline", required=True)
    p.add_argument("--checkpoint", help="PAG checkpoint (training time and recipe)")
    p.add_argument("--baseline-checkpoint")
    p.add_argument("--card", required=True, help="markdown model card to write (a .json beside it)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--int8", help="the int8 QDQ version (`pag calibrate`): evaluated at ρ = 1 and 0.5 beside the float model")
    a = p.parse_args()
    data = SceneSet(a.data)
    res = evaluate(a.model, data, RHOS, a.threads)
    base = evaluate(a.baseline, data, [("dense", 1.0)], a.threads)["dense"]
    dens, names = native_density(a.model, data)
    rows, macs = [], {}
    for label, rho in RHOS:
        d = dens if rho == 0.0 else [rho] * len(names)
        total, executed = mac_budget(a.model, d, pool_shares(a.model, data, rho))
        macs[label] = executed
        rows.append(fmt_row(f"PAG ρ={label}" if rho else "PAG native", res[label], executed / 1e9))
    btotal, bexec = mac_budget(a.baseline, [], pool_shares(a.baseline, data, 1.0))
    rows.append(fmt_row("dense baseline", base, bexec / 1e9))
    rel = {k: 100 * (res["1.0"]["mIoU"] - res[k]["mIoU"]) / res["1.0"]["mIoU"] for k, _ in RHOS if k != "1.0"}
    meta = {p.key: p.value for p in onnx.load(a.model).metadata_props}
    ck = torch.load(a.checkpoint, map_location="cpu", weights_only=False)["training"] if a.checkpoint else None
    bck = torch.load(a.baseline_checkpoint, map_location="cpu", weights_only=False)["training"] if a.baseline_checkpoint else None
    cfg = json.loads(meta.get("pag.training", "{}"))
    size_mb = os.path.getsize(a.model) / 1e6
    arch = json.loads(meta.get("pag.architecture", '{"arch": "v1"}')).get("arch", "v1")
    gmacs_pag = mac_budget(a.model, [1.0] * len(names), [1.0] * 7)[0] / 1e9
    lines = [
        "# Model card: `pag_multitask.onnx` (and `pag_dense_baseline.onnx`)", "",
        "Multi-task PAG network for indoor scenes: semantic segmentation (8 classes), metric depth and",
        "surface normals from one 240×320 RGB image. Trained only on pagrt's procedural scenes",
        "(`pag scenes`), so it knows that world, not real cameras. Numbers below come from",
        "`python -m pag.evaluate` (see models/README.md) on "
        f"{len(data)} held-out scenes (seeds {data.meta.get('first_seed')}–{data.meta.get('first_seed', 0) + len(data) - 1},",
        "never used in training), run through onnxruntime, i.e. the shipped files themselves.", "",
        "## Architecture",
        f"- Parameters: {meta.get('pag.parameters')} (PAG) — file size {size_mb:.2f} MB (float32 ONNX, opset 17),"
        f" architecture `{arch}` (metadata `pag.architecture`).",
        *(ARCH_TEXT[arch]),
        "- Each gated block: `O = I + G ⊙ F(I)`, G from a 1×1 conv on I (paper eq. 1–2); F = 1×1 → 3×3 → 1×1.",
        "- The dense baseline is the same backbone with the gates removed (every block always runs).",
        f"- Graph MACs per frame (every pixel, every MultiPool branch, as exported): {btotal / 1e9:.3f} G baseline,"
        f" {gmacs_pag:.3f} G PAG (the {len(names)} one-channel gate convs are the difference).",
        "  The *executed* GMACs column counts what PAG needs: gated branches only at active pixels and",
        "  one MultiPool branch per pixel (the figure a sparse runtime should approach; `pag info`",
        "  prints the runtime's own count and the gated share).", "",
        "## Training",
        *training_text(cfg, meta, ck),
        *baseline_text(bck),
        "- Losses (paper): cross-entropy; log-depth L2 + 2·L1; normals −cos + 4·acos; AdamW, lr 3e-3 with",
        "  the paper's poly(0.9) decay; τ annealed 1 → 0.1 geometrically.",
        f"- ρ at run time: the first {int(100 * cfg.get('warmup_dense', 0.15))}% of iterations at ρ=1; then per batch,"
        f" {int(100 * cfg.get('dense_share', 0))}% at ρ=1, {int(100 * cfg.get('native_share', 0))}% native",
        f"  (Gumbel straight-through, τ) and the rest top-⌈ρ·H·W⌉ masks with ρ ~ U[{cfg.get('rho_min')}, 1] (hard",
        "  forward, straight-through sigmoid(s/τ) backward); every gated layer pays",
        f"  0.05 · KL({cfg.get('rho_native')} ‖ g_l) (paper eq. 5–6; our λ differs from the paper's 1e-4 because",
        "  our task losses are per-pixel means).",
    ]
    if ck:
        lines.append(f"- Training time: PAG {ck['seconds'] / 60:.1f} min, {ck['iterations']} iterations, on {ck['threads']} CPU thread(s)"
                     + (f"; baseline {bck['seconds'] / 60:.1f} min, {bck['iterations']} iterations" if bck else "")
                     + f" (torch {ck['torch']}, {cpu_model()}, no GPU; "
                     + ("PAG's stage 1 and the baseline's ran side by side, one thread each; each stage 2 ran on one thread"
                        if ck.get("history") else "the two trainings ran side by side, one thread each,")
                     + " and shared the machine with Rust builds and benchmarks).")
    lines += ["", "## Accuracy on held-out scenes", "",
              "| setting | " + " | ".join(c for _, c in COLS) + " | executed GMACs |",
              "|---" * (len(COLS) + 2) + "|", *rows, "",
              "mIoU and pixel accuracy in %; δ: % of pixels with max(d/d̂, d̂/d) below the threshold; abs-rel:",
              "mean |d − d̂|/d; normals: mean angular error in degrees and % of pixels within the angle.", "",
              "## Graceful degradation (one model, ρ changed at run time)",
              f"- Relative mIoU loss vs ρ=1: ρ=0.9 {rel['0.9']:.1f}%, ρ=0.7 {rel['0.7']:.1f}%, "
              + ", ".join(f"ρ={k} **{rel[k]:.1f}%** (goal ≤ {g:g}%: {'met' if rel[k] <= g else 'missed'})"
                          for k, g in REL_GOALS.items())
              + f", native {rel['native']:.1f}%.",
              "- Goals at ρ=1: " + ", ".join(goal_text(k, res["1.0"][k]) for k in GOALS)
              + f"; within 1.0 mIoU of the dense baseline: {'met' if base['mIoU'] - res['1.0']['mIoU'] <= 1.0 else 'missed'}.",
              f"- Native gate density per layer (mean over 20 held-out scenes): "
              + ", ".join(f"{n} {d:.2f}" for n, d in zip(names, dens)) + f"; mean {np.mean(dens):.2f}.",
              "- The paper's anchor: −6.2% relative IoU at ρ=0.7 with a model *retrained* for that ρ (NYUv2).",
              *([f"- Negative losses mean the sparser setting scored *higher* than ρ=1. After the dense warm-up,"
                 " training sampled ρ ~ U[ρ_min, 1], so ρ=1 is the least-trained setting; read the curve as flat"
                 " within a few % of ρ=1 rather than as sparsity helping."]
                if min(rel.values()) < 0 else []),
              f"- Against the dense baseline (same backbone, no gates, {bck['iterations'] if bck else '?'} iterations): "
              f"mIoU {res['1.0']['mIoU'] - base['mIoU']:+.1f} points at ρ=1, {res['0.5']['mIoU'] - base['mIoU']:+.1f} at ρ=0.5;"
              f" depth δ<1.25 {res['1.0']['delta1'] - base['delta1']:+.1f} points, normals {res['1.0']['normal_mean_deg'] - base['normal_mean_deg']:+.1f}°"
              + (f" — not an equal-budget comparison: PAG trained {ck['iterations']} iterations, the baseline {bck['iterations']}"
                 " (the \"within 1.0 mIoU\" goal asks that gating costs no accuracy; it does not show that gating adds any)."
                 if ck and bck and ck["iterations"] != bck["iterations"] else "."),
              "", "## Limits",
              "- Synthetic domain only; depth is metric for a 70° horizontal field of view at 240×320"
              + (f", for a camera on the declared mount ({mount_text(meta)}); other heights scale depth." if "pag.camera_mount" in meta else "."),
              "- Budget mode keeps exactly ⌈ρ·H·W⌉ pixels per gated layer (ties to the lower pixel index).",
              f"- Native mode's density is whatever the gates learned (mean above); the KL target was {cfg.get('rho_native')}.",
              "- Executed GMACs are what a sparse runtime needs; see the README for what pagrt's sparse execution achieves today."]
    int8 = None
    if a.int8:
        int8 = evaluate(a.int8, data, [("1.0", 1.0), ("0.5", 0.5)], a.threads)
        qmeta = {p.key: p.value for p in onnx.load(a.int8).metadata_props}
        q = json.loads(qmeta.get("pag.quantization", "{}"))
        lines += ["", f"## int8 version (`{os.path.basename(a.int8)}`)",
                  f"Written by `pag calibrate` (calibration/README.md): QDQ format of models/CONTRACT.md, {q.get('activations')}"
                  f" activations, {q.get('weights')} weights, method `{q.get('method')}`, kept float: {', '.join(q.get('kept_float', []))}."
                  " pagrt runs it on its int8 kernels (README: speed); onnxruntime runs it as QLinearConv. Same scenes, through onnxruntime:", "",
                  "| setting | " + " | ".join(c for _, c in COLS) + " | Δ mIoU | Δ δ<1.25 | Δ normals° |",
                  "|---" * (len(COLS) + 4) + "|"]
        for label in ("1.0", "0.5"):
            r, f = int8[label], res[label]
            cells = [f"{r[k]:.3f}" if k == "abs_rel" else f"{r[k]:.1f}" for k, _ in COLS]
            lines.append(f"| int8 ρ={label} | " + " | ".join(cells)
                         + f" | {r['mIoU'] - f['mIoU']:+.2f} | {r['delta1'] - f['delta1']:+.2f} | {r['normal_mean_deg'] - f['normal_mean_deg']:+.2f} |")
        ok = all(abs(int8[l]["mIoU"] - res[l]["mIoU"]) <= 1.0 and abs(int8[l]["delta1"] - res[l]["delta1"]) <= 1.0
                 and abs(int8[l]["normal_mean_deg"] - res[l]["normal_mean_deg"]) <= 1.0 for l in ("1.0", "0.5"))
        lines += ["", f"Goals (issue #12: mIoU and δ<1.25 within 1.0 point of float, normals within 1°, at ρ = 1 and 0.5): "
                  f"{'met' if ok else 'missed'}. Budget-mask agreement with the float model: `python3 -m pag.evaluate_qdq` (calibration/README.md)."]
    with open(a.card, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.splitext(a.card)[0] + ".json", "w") as f:
        json.dump({"pag": res, "baseline": base, "native_density": dict(zip(names, dens)),
                   "executed_macs": macs, "baseline_macs": btotal, "relative_miou_loss_pct": rel,
                   **({"int8": int8} if int8 else {})}, f, indent=2)
    print(open(a.card).read())


if __name__ == "__main__":
    main()
