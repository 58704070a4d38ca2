#!/usr/bin/env python3
"""Writes small PAG models (random weights) with the reference exporter's metadata rules, as fast
seeds for the loader fuzz target (the shipped model takes ~0.1 s to load; these a few ms):

  tiny_pag.onnx     the v1 architecture at 16×16: 4 gated blocks, 1 MultiPool, 2 classes
  minimal_pag.onnx  8×8: a stem conv, 1 gated block, 1 MultiPool bottleneck, the three heads

    cd models && PYTHONPATH=. python3 ../fuzz/seeds/make_tiny_model.py ../fuzz/seeds/loader
"""
import json
import os
import sys

import onnx
import torch
import torch.nn.functional as F

from pag.data import MEAN, STD
from pag.export import CONTRACT_VERSION, OPSET, find_gated_blocks, find_multipools
from pag.model import ConvBN, ExportGates, GatedBottleneck, MultiPoolBottleneck, NetConfig, PagNet, fuse_all


class Minimal(torch.nn.Module):
    def __init__(self, classes=2, c=4):
        super().__init__()
        self.stem = ConvBN(3, c, 3)
        self.block = GatedBottleneck(c, 2)
        self.pool = MultiPoolBottleneck(c, 2)
        self.head = torch.nn.Conv2d(c, classes + 4, 1)
        self.classes = classes

    def forward(self, x, ctl):
        y = self.head(self.pool(self.block(self.stem(x), ctl), ctl))
        k = self.classes
        n = y[:, k + 1:k + 4]
        return y[:, :k], y[:, k:k + 1], n / torch.sqrt((n * n).sum(dim=1, keepdim=True) + 1e-12)


class Wrapper(torch.nn.Module):
    """(image, rho) → (seg_logits, depth, normals), as pag.model.ExportWrapper."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image, rho):
        seg, log_depth, normals = self.net(image, ExportGates(rho))
        return seg, torch.exp(log_depth), normals


def randomise(net):
    # Distinct random batch-norm statistics and biases: identical fused biases would be
    # deduplicated by the exporter into one initializer, which the sparse extraction refuses.
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
        elif isinstance(m, torch.nn.Conv2d) and m.bias is not None:
            m.bias.data.add_(torch.empty_like(m.bias).uniform_(-0.1, 0.1))
    return fuse_all(net.eval())


def export(net, out, size):
    torch.onnx.export(Wrapper(net).eval(), (torch.zeros(1, 3, size, size), torch.tensor([1.0])), out,
                      input_names=["image", "rho"], output_names=["seg_logits", "depth", "normals"],
                      opset_version=OPSET, dynamo=False, do_constant_folding=True)
    model = onnx.load(out)
    meta = {
        "pag.contract_version": CONTRACT_VERSION,
        "pag.class_names": json.dumps(["floor", "thing"]),
        "pag.palette": json.dumps([[0, 0, 0], [255, 0, 0]]),
        "pag.input": json.dumps({"name": "image", "height": size, "width": size, "layout": "NCHW", "color": "RGB",
                                 "scale": 1 / 255, "mean": MEAN.tolist(), "std": STD.tolist()}),
        "pag.rho_input": "rho",
        "pag.outputs": json.dumps({"seg_logits": {"kind": "segmentation_logits"}, "depth": {"kind": "depth"},
                                   "normals": {"kind": "normals"}}),
        "pag.gated_blocks": json.dumps(find_gated_blocks(model.graph)),
        "pag.multipools": json.dumps(find_multipools(model.graph)),
        "pag.camera_hfov_deg": "70.0",
    }
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    model.producer_name = "pagrt-fuzz-seed"
    onnx.checker.check_model(model)
    onnx.save(model, out)
    print(f"wrote {out}: {len(model.SerializeToString())} bytes, {len(model.graph.node)} nodes, "
          f"{len(json.loads(meta['pag.gated_blocks']))} gated blocks, {len(json.loads(meta['pag.multipools']))} MultiPools")


def main(out_dir):
    torch.manual_seed(0)
    cfg = NetConfig(num_classes=2, stem=4, widths=(8, 8, 8), mids=(4, 4, 4), blocks=(1, 1, 2), decoder=4)
    export(randomise(PagNet(cfg)), os.path.join(out_dir, "tiny_pag.onnx"), 16)
    export(randomise(Minimal()), os.path.join(out_dir, "minimal_pag.onnx"), 8)


if __name__ == "__main__":
    main(sys.argv[1])
