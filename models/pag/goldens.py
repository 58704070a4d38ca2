"""Golden files for the runtime's tests: held-out inputs and onnxruntime's outputs for them,
and a check that PyTorch (the same fused weights) and onnxruntime agree.

    python -m pag.goldens --checkpoint runs/pag/checkpoint.pt --model shipped/pag_multitask.onnx \
        --data data/heldout --out goldens
Exits non-zero if any max |PyTorch − onnxruntime| exceeds --tol (1e-4)."""
import argparse
import json
import os
import sys

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image

from .data import SceneSet, normalise_image
from .model import ExportWrapper, fuse_all
from .train import load

# (case name, sample index in the held-out set, ρ input: 1 dense, 0 native)
CASES = [("scene0_dense", 0, 1.0), ("scene1_rho0.5", 1, 0.5), ("scene1_native", 1, 0.0)]
OUTPUTS = ["seg_logits", "depth", "normals"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tol", type=float, default=1e-4)
    a = p.parse_args()
    data = SceneSet(a.data, limit=max(c[1] for c in CASES) + 1)
    net, _ = load(a.checkpoint)
    wrapper = ExportWrapper(fuse_all(net)).eval()
    sess = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    has_rho = any(i.name == "rho" for i in sess.get_inputs())
    manifest, worst = [], 0.0
    for name, idx, rho in CASES:
        d = os.path.join(a.out, name)
        os.makedirs(d, exist_ok=True)
        x = normalise_image(data.rgb[idx])
        Image.fromarray(data.rgb[idx]).save(os.path.join(d, "input.png"))
        np.save(os.path.join(d, "input.npy"), x)
        feed = {"image": x}
        if has_rho:
            feed["rho"] = np.array([rho], np.float32)
            np.save(os.path.join(d, "rho.npy"), feed["rho"])
        ref = sess.run(OUTPUTS, feed)
        with torch.no_grad():
            mine = [t.numpy() for t in wrapper(torch.from_numpy(x), torch.tensor([rho], dtype=torch.float32))]
        diffs = {}
        for o, r, m in zip(OUTPUTS, ref, mine):
            np.save(os.path.join(d, f"{o}.npy"), r)
            diffs[o] = float(np.abs(r - m).max())
        worst = max(worst, *diffs.values())
        manifest.append({"case": name, "heldout_sample": data.ids[idx], "rho": rho, "max_abs_diff_torch_vs_ort": diffs})
        print(f"{name}: ρ={rho} max |torch − onnxruntime| " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump({"model": os.path.basename(a.model), "onnxruntime": ort.__version__, "torch": torch.__version__,
                   "cases": manifest}, f, indent=2)
    if worst > a.tol:
        print(f"FAIL: worst difference {worst:.2e} > {a.tol}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: worst difference {worst:.2e} ≤ {a.tol}")


if __name__ == "__main__":
    main()
