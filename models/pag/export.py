"""Export a trained checkpoint to ONNX following CONTRACT.md (standard operators only, opset 17),
with the PAG metadata the runtime validates.

    python -m pag.export --checkpoint runs/pag/checkpoint.pt --data data/train --out shipped/pag_multitask.onnx
"""
import argparse
import json

import onnx
import torch

from .data import MEAN, STD
from .model import DILATIONS, ExportWrapper, count_params, fuse_all
from .train import load

CONTRACT_VERSION = "2"
OPSET = 17


def producers(graph):
    return {o: n for n in graph.node for o in n.output}


def consumers(graph):
    out = {}
    for n in graph.node:
        for i in n.input:
            out.setdefault(i, []).append(n)
    return out


def find_gated_blocks(graph):
    """Structural search: Add(x, Mul(mask, branch)) where mask = Where(rho > 0, budget, native)
    and native = Cast(Greater(score, 0)), score = Conv_1x1(x)."""
    prod = producers(graph)
    blocks = []
    for add in graph.node:
        if add.op_type != "Add":
            continue
        for xi, mi in ((0, 1), (1, 0)):
            mul = prod.get(add.input[mi])
            if mul is None or mul.op_type != "Mul":
                continue
            for wi, bi in ((0, 1), (1, 0)):
                where = prod.get(mul.input[wi])
                if where is None or where.op_type != "Where":
                    continue
                cast = prod.get(where.input[2])
                greater = prod.get(cast.input[0]) if cast is not None else None
                score_conv = prod.get(greater.input[0]) if greater is not None else None
                if score_conv is None or score_conv.op_type != "Conv":
                    continue
                name = add.name.rsplit("/", 1)[0].lstrip("/").removeprefix("net/")
                blocks.append({"name": name, "input": add.input[xi], "score": score_conv.output[0],
                               "mask": where.output[0], "branch": mul.input[bi], "output": add.output[0]})
    return blocks


def find_multipools(graph):
    """ArgMax(selector) → Equal(arange) → Cast → one Slice per branch → Mul(branch) → Add chain."""
    prod, cons = producers(graph), consumers(graph)
    pools = []
    for am in graph.node:
        if am.op_type != "ArgMax":
            continue
        sel_conv = prod[am.input[0]]
        eq = cons[am.output[0]][0]
        cast = cons[eq.output[0]][0]
        slices = sorted([n for n in cons[cast.output[0]] if n.op_type == "Slice"], key=lambda n: n.name)
        branches, last = [], None
        for sl in slices:
            mul = cons[sl.output[0]][0]
            branches.append(mul.input[1] if mul.input[0] == sl.output[0] else mul.input[0])
            nxt = cons[mul.output[0]][0]
            last = nxt if nxt.op_type == "Add" else last
        name = am.name.rsplit("/", 1)[0].lstrip("/").removeprefix("net/")
        pools.append({"name": name, "input": sel_conv.input[0], "selector": sel_conv.output[0],
                      "dilations": list(DILATIONS), "branches": branches, "output": last.output[0]})
    return pools


def link_gated_multipools(graph, blocks, pools):
    """Contract version 2: a gated block whose expand conv reads a MultiPool's output has that
    MultiPool as its spatial stage (`"multipool": name`)."""
    prod = producers(graph)
    for b in blocks:
        expand = prod.get(b["branch"])
        for p in pools:
            if expand is not None and expand.op_type == "Conv" and expand.input[0] == p["output"]:
                b["multipool"] = p["name"]
    return blocks


def export(checkpoint, out, class_names, palette, hfov_deg, height=240, width=320, mount=None):
    net, ck = load(checkpoint)
    fuse_all(net)
    wrapper = ExportWrapper(net).eval()
    image = torch.zeros(1, 3, height, width)
    rho = torch.tensor([1.0])
    gated = net.cfg.gated
    torch.onnx.export(wrapper, (image, rho), out, input_names=["image", "rho"],
                      output_names=["seg_logits", "depth", "normals"], opset_version=OPSET,
                      dynamo=False, do_constant_folding=True)
    model = onnx.load(out)
    g = model.graph
    meta = {
        "pag.contract_version": CONTRACT_VERSION,
        "pag.class_names": json.dumps(class_names),
        "pag.palette": json.dumps(palette),
        "pag.input": json.dumps({"name": "image", "height": height, "width": width, "layout": "NCHW",
                                 "color": "RGB", "scale": 1 / 255, "mean": MEAN.tolist(), "std": STD.tolist()}),
        "pag.rho_input": "rho" if gated else "",
        "pag.outputs": json.dumps({
            "seg_logits": {"kind": "segmentation_logits"},
            "depth": {"kind": "depth", "unit": "m", "along": "optical_z"},
            "normals": {"kind": "normals", "frame": "camera_optical", "axes": "x right, y down, z forward"}}),
        "pag.gated_blocks": json.dumps(link_gated_multipools(g, find_gated_blocks(g), find_multipools(g))),
        "pag.multipools": json.dumps(find_multipools(g)),
        "pag.camera_hfov_deg": str(hfov_deg),
        "pag.training": json.dumps({k: ck["training"]["args"].get(k) for k in
                                    ("rho_min", "rho_native", "native_share", "dense_share", "warmup_dense", "iters",
                                     "half_iters", "batch", "crop", "dense", "lr", "stage2_from", "stage2_lr",
                                     "rho_low_share", "rho_low_max")}),
        "pag.parameters": str(count_params(net)),
        "pag.architecture": json.dumps(net.cfg.to_dict()),
    }
    if mount is not None:
        meta["pag.camera_mount"] = json.dumps({k: round(v, 4) for k, v in mount.items()})
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    model.producer_name = "pagrt-models"
    onnx.checker.check_model(model)
    onnx.save(model, out)
    return model, meta


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="dataset dir (its meta.json gives class names, palette, camera)")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    with open(f"{a.data}/meta.json") as f:
        dm = json.load(f)
    hfov = dm.get("intrinsics", {}).get("hfov_deg", dm.get("hfov_deg", 70.0))
    _, meta = export(a.checkpoint, a.out, dm["class_names"], dm["palette"], hfov, mount=dm.get("camera_mount"))
    print(f"wrote {a.out}: {len(json.loads(meta['pag.gated_blocks']))} gated blocks, "
          f"{len(json.loads(meta['pag.multipools']))} MultiPool modules")


if __name__ == "__main__":
    main()
