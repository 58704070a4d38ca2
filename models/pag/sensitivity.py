"""Which gated layers carry a model's accuracy loss at a small budget: for each gated layer, the
mIoU with only that layer at ρ (the rest at 1) and with every layer at ρ but that one (at 1).

    python3 -m pag.sensitivity --checkpoint checkpoints/pag_v2.pt --data data/heldout_v2 --rho 0.25 --count 60

PyTorch on the checkpoint, the contract's budget rule (`eval_mask`) per layer; layers are numbered
in forward order (for model v2: stage1.0, stage1.1, stage2.0–2.4 with the MultiPool at 2.2,
decoder.0, decoder.1 — the names `pag bench --profile` prints). A development tool: the runtime
applies one ρ to every layer.
"""
import argparse
import sys
import time

import numpy as np
import torch

from .data import SceneSet, normalise_image
from .evaluate import confusion, miou
from .gates import GateControl, eval_mask
from .train import load


class PerLayer(GateControl):
    """Eval-mode gates with one ρ per gated layer, in forward order (1 past the list)."""

    def __init__(self, rhos):
        super().__init__("eval", 1.0, 1.0)
        self.rhos = rhos

    def mask(self, score):
        rho = self.rhos[len(self.masks)] if len(self.masks) < len(self.rhos) else 1.0
        m = eval_mask(score, torch.as_tensor([rho], dtype=torch.float32))
        self.masks.append(m)
        return m


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="held-out scenes (pag scenes)")
    p.add_argument("--rho", type=float, default=0.25)
    p.add_argument("--count", type=int, default=60, help="scenes to evaluate")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    if not 0.0 < a.rho <= 1.0:
        p.error(f"--rho must be in (0, 1], got {a.rho}")
    torch.set_num_threads(a.threads)
    net, _ = load(a.checkpoint)
    data = SceneSet(a.data, a.count, packed=True)
    k = len(data.meta["class_names"])
    images = [torch.from_numpy(normalise_image(data.rgb[i])) for i in range(len(data))]

    def score(rhos):
        conf = np.zeros((k, k), np.int64)
        with torch.no_grad():
            for img, lab in zip(images, data.label):
                seg, _, _ = net(img, PerLayer(rhos))
                conf += confusion(seg[0].argmax(0).numpy(), lab, k)
        return miou(conf)

    probe = PerLayer([])
    with torch.no_grad():
        net(images[0], probe)
    layers = len(probe.masks)
    if layers == 0:
        sys.exit(f"{a.checkpoint}: no gated layers (a dense baseline?)")
    t0 = time.time()
    full, low = score([1.0] * layers), score([a.rho] * layers)
    print(f"{len(images)} scenes, {layers} gated layers: mIoU {full:.1f} at ρ=1, {low:.1f} with every layer at ρ={a.rho}")
    print(f"{'layer':>5}  {'only it at ρ':>12}  {'all but it at ρ':>15}")
    for layer in range(layers):
        only = [1.0] * layers
        only[layer] = a.rho
        but = [a.rho] * layers
        but[layer] = 1.0
        print(f"{layer:>5}  {score(only) - full:>+12.1f}  {score(but) - low:>+15.1f}", flush=True)
    print(f"(points of mIoU against ρ=1 and against every layer at ρ; {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
