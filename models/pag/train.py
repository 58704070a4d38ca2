"""Train a multi-task PAG model (or the dense baseline) on rendered scenes.

    python -m pag.train --data data/train --out runs/pag --iters 3000
    python -m pag.train --data data/train --out runs/dense --dense --iters 3000

ρ is sampled per batch so that one model serves every budget at run time: a share of batches
use the gates' own Gumbel straight-through decision ("native"), the rest use the runtime's
top-⌈ρ·H·W⌉ rule with ρ ~ U[rho_min, 1]. Every gated layer also pays KL(ρ_native ‖ g_l).
τ anneals geometrically 1 → 0.1 as in the paper."""
import argparse
import json
import math
import os
import time

import numpy as np
import torch

from .data import SceneSet
from .gates import GateControl, kl_sparsity
from .losses import depth_loss, normal_loss, seg_loss
from .model import NetConfig, PagNet, count_params


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dense", action="store_true", help="train the dense baseline (no gates)")
    p.add_argument("--iters", type=int, default=3000)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--crop", type=int, nargs=2, default=[128, 160], metavar=("H", "W"))
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--rho-min", type=float, default=0.3)
    p.add_argument("--rho-native", type=float, default=0.5, help="KL sparsity target of the native gates")
    p.add_argument("--native-share", type=float, default=0.25)
    p.add_argument("--warmup-dense", type=float, default=0.15, help="share of iterations at ρ=1 first")
    p.add_argument("--kl-weight", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    p.add_argument("--limit", type=int, default=None, help="use only the first N samples")
    return p.parse_args()


def main():
    a = parse()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    data = SceneSet(a.data, a.limit)
    cfg = NetConfig(num_classes=len(data.meta["class_names"]), gated=not a.dense)
    net = PagNet(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=1e-4)
    os.makedirs(a.out, exist_ok=True)
    print(f"{'dense baseline' if a.dense else 'PAG'}: {count_params(net)} parameters, "
          f"{len(data)} training samples, {a.iters} iterations of batch {a.batch} at {a.crop}", flush=True)
    t0 = time.time()
    hist = []
    for it in range(a.iters):
        frac = it / a.iters
        lr = a.lr * (1 - frac) ** 0.9  # "poly" schedule, as in the paper
        for g in opt.param_groups:
            g["lr"] = lr
        tau = 0.1 ** frac
        if a.dense or frac < a.warmup_dense:
            ctl = GateControl("budget", rho=1.0, tau=tau)
        elif rng.random() < a.native_share:
            ctl = GateControl("native", tau=tau)
        else:
            ctl = GateControl("budget", rho=float(rng.uniform(a.rho_min, 1.0)), tau=tau)
        idx = rng.integers(0, len(data), a.batch)
        img, lab, dep, nor = data.batch(idx, crop=tuple(a.crop), rng=rng, flip=bool(rng.random() < 0.5))
        seg, log_d, n = net(img, ctl)
        ls, ld, ln = seg_loss(seg, lab), depth_loss(log_d, dep), normal_loss(n, nor)
        loss = ls + ld + 0.25 * ln
        kl = torch.zeros(())
        if ctl.soft_densities:
            kl = torch.stack([kl_sparsity(a.rho_native, g).mean() for g in ctl.soft_densities]).sum()
            loss = loss + a.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        hist.append([ls.item(), ld.item(), ln.item(), kl.item()])
        if (it + 1) % 25 == 0 or it + 1 == a.iters:
            el = time.time() - t0
            m = np.mean(hist[-25:], axis=0)
            dens = [f"{h.mean().item():.2f}" for h in ctl.masks] if ctl.masks else []
            print(f"[{it + 1:5d}/{a.iters}] seg {m[0]:.3f} depth {m[1]:.3f} normal {m[2]:.3f} kl {m[3]:.3f} "
                  f"mode {ctl.mode}{'' if ctl.mode != 'budget' else f'({ctl.rho:.2f})'} tau {tau:.2f} "
                  f"densities [{' '.join(dens)}] | {el / 60:.1f} min, eta {el / (it + 1) * (a.iters - it - 1) / 60:.1f} min",
                  flush=True)
        if (it + 1) % 500 == 0 or it + 1 == a.iters:
            save(net, cfg, a, time.time() - t0, it + 1, os.path.join(a.out, "checkpoint.pt"))
    print(f"done in {(time.time() - t0) / 60:.1f} min", flush=True)


def save(net, cfg, args, seconds, iters, path):
    torch.save({"config": cfg.to_dict(), "state_dict": net.state_dict(),
                "training": {"seconds": seconds, "iterations": iters, "args": vars(args),
                             "torch": torch.__version__, "threads": torch.get_num_threads()}}, path)


def load(path) -> tuple[PagNet, dict]:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = NetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in ck["config"].items()})
    net = PagNet(cfg)
    net.load_state_dict(ck["state_dict"])
    return net.eval(), ck


if __name__ == "__main__":
    main()
