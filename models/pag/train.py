"""Train a multi-task PAG model (or its dense baseline) on rendered scenes.

    python -m pag.train --arch v2 --data data/train --half-data data/train_half --half-iters 8000 \\
        --out runs/pag_v2 --iters 16000 --batch 8 --threads 1

ρ is sampled per batch so that one model serves every budget at run time: after a dense
warm-up, a share of batches run at ρ = 1 (so the full model stays the best-trained setting), a
share use the gates' own Gumbel straight-through decision ("native"), the rest use the runtime's
top-⌈ρ·H·W⌉ rule with ρ ~ U[rho_min, 1]. Every gated layer also pays KL(ρ_native ‖ g_l).
τ anneals geometrically 1 → 0.1 as in the paper. `--rho-low-share` draws that share of the
budget batches from U[rho_min, rho_low_max] (more practice at small ρ). `--stage2-from N` with
`--resume` continues a finished run with a second learning-rate cycle (τ stays 0.1).
`--sandwich` runs every batch twice, at ρ = 1 and in the sampled setting, and distils the first
into the second (slimmable networks' in-place distillation; twice the time per iteration).

Resolution schedule (v2): the first `--half-iters` iterations use `--half-data`, the same kind
of scenes rendered at half the size (4× cheaper per step), then full frames. No crops: with a
fixed camera mount a crop would move the principal point and make depth ambiguous again.

The run writes `OUT/checkpoint.pt` every 500 iterations (model, optimiser, iteration, random
state) and `--resume` continues from it, so a run can span sessions."""
import argparse
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from .data import SceneSet
from .gates import GateControl, kl_sparsity
from .losses import depth_loss, normal_loss, seg_loss
from .model import NetConfig, NetConfigV2, build, count_params


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--arch", choices=["v1", "v2"], default="v2")
    p.add_argument("--dense", action="store_true", help="train the dense baseline (no gates)")
    p.add_argument("--iters", type=int, default=3000)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--crop", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="random crops (v1 recipe); default: full frames")
    p.add_argument("--half-data", default=None, help="the same distribution rendered at half size")
    p.add_argument("--half-iters", type=int, default=0, help="iterations on --half-data first")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--rho-min", type=float, default=0.3)
    p.add_argument("--rho-low-share", type=float, default=0.0,
                   help="share of budget batches with ρ ~ U[rho_min, rho_low_max] instead of U[rho_min, 1]")
    p.add_argument("--rho-low-max", type=float, default=0.45)
    p.add_argument("--stage2-from", type=int, default=None, metavar="N",
                   help="from iteration N on: a second poly learning-rate cycle from --stage2-lr down to 0 "
                        "at --iters, τ held at its final 0.1 (continue a finished run with --resume)")
    p.add_argument("--stage2-lr", type=float, default=1e-3)
    p.add_argument("--rho-native", type=float, default=0.5, help="KL sparsity target of the native gates")
    p.add_argument("--native-share", type=float, default=0.25)
    p.add_argument("--dense-share", type=float, default=0.0, help="share of batches at ρ = 1 after the warm-up")
    p.add_argument("--warmup-dense", type=float, default=0.15, help="share of iterations at ρ=1 first")
    p.add_argument("--kl-weight", type=float, default=0.05)
    p.add_argument("--sandwich", action="store_true",
                   help="each iteration also runs the batch at ρ = 1 (task losses) and distils it into the "
                        "sampled setting (slimmable networks' in-place distillation): two passes per step")
    p.add_argument("--kd-weight", type=float, default=1.0, help="weight of the distillation loss (--sandwich)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    p.add_argument("--limit", type=int, default=None, help="use only the first N samples")
    p.add_argument("--resume", action="store_true", help="continue OUT/checkpoint.pt")
    return p.parse_args(argv)


def gate_control(a, rng, frac, tau):
    """How this batch binarises its gates (see the module docstring)."""
    if a.dense or frac < a.warmup_dense:
        return GateControl("budget", rho=1.0, tau=tau)
    u = rng.random()
    if u < a.dense_share:
        return GateControl("budget", rho=1.0, tau=tau)
    if u < a.dense_share + a.native_share:
        return GateControl("native", tau=tau)
    hi = a.rho_low_max if a.rho_low_share > 0 and rng.random() < a.rho_low_share else 1.0
    return GateControl("budget", rho=float(rng.uniform(a.rho_min, hi)), tau=tau)


def main(argv=None):
    a = parse(argv)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    packed = a.arch == "v2"
    data = SceneSet(a.data, a.limit, packed=packed)
    half = SceneSet(a.half_data, a.limit, packed=packed) if a.half_data and a.half_iters > 0 else None
    k = len(data.meta["class_names"])
    cfg = (NetConfigV2(num_classes=k, gated=not a.dense) if a.arch == "v2"
           else NetConfig(num_classes=k, gated=not a.dense))
    net = build(cfg.to_dict())
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=1e-4)
    os.makedirs(a.out, exist_ok=True)
    ck_path = os.path.join(a.out, "checkpoint.pt")
    start, seconds_before, history = 0, 0.0, []
    if a.resume and os.path.exists(ck_path):
        ck = torch.load(ck_path, map_location="cpu", weights_only=False)
        net.load_state_dict(ck["state_dict"])
        if "optimizer" in ck:
            opt.load_state_dict(ck["optimizer"])
        start = ck["training"]["iterations"]
        seconds_before = ck["training"]["seconds"]
        # The recipes of earlier stages (a resume with other options starts a new stage).
        history = list(ck["training"].get("history", []))
        previous = {k: v for k, v in ck["training"]["args"].items() if k != "resume"}
        if previous != {k: v for k, v in vars(a).items() if k != "resume"}:
            history.append({"until": start, "args": previous})
        if "rng" in ck:
            rng.bit_generator.state = ck["rng"]["numpy"]
            torch.set_rng_state(ck["rng"]["torch"])
        print(f"resuming {ck_path} at iteration {start} ({seconds_before / 60:.1f} min so far)", flush=True)
    print(f"{'dense baseline' if a.dense else 'PAG'} {a.arch}: {count_params(net)} parameters, "
          f"{len(data)} training samples, {a.iters} iterations of batch {a.batch} "
          f"({a.half_iters if half else 0} at half size), {a.threads} thread(s)", flush=True)
    t0 = time.time()
    hist = []
    net.train()
    for it in range(start, a.iters):
        frac = it / a.iters
        lr = a.lr * (1 - frac) ** 0.9  # "poly" schedule, as in the paper
        tau = 0.1 ** frac
        if a.stage2_from is not None and it >= a.stage2_from:
            lr = a.stage2_lr * (1 - (it - a.stage2_from) / (a.iters - a.stage2_from)) ** 0.9
            tau = 0.1
        for g in opt.param_groups:
            g["lr"] = lr
        ctl = gate_control(a, rng, frac, tau)
        src = half if half is not None and it < a.half_iters else data
        idx = rng.integers(0, len(src), a.batch)
        crop = tuple(a.crop) if a.crop else None
        img, lab, dep, nor = src.batch(idx, crop=crop, rng=rng, flip=bool(rng.random() < 0.5))
        seg, log_d, n = net(img, ctl)
        ls, ld, ln = seg_loss(seg, lab), depth_loss(log_d, dep), normal_loss(n, nor)
        loss = ls + ld + 0.25 * ln
        kl = torch.zeros(())
        densities = list(ctl.soft_densities)
        if a.sandwich and not a.dense and not (ctl.mode == "budget" and ctl.rho == 1.0):
            # The same batch at ρ = 1: task losses, and its predictions (detached) as soft targets
            # of the sampled setting.
            full = GateControl("budget", rho=1.0, tau=tau)
            seg1, log_d1, n1 = net(img, full)
            loss = loss + seg_loss(seg1, lab) + depth_loss(log_d1, dep) + 0.25 * normal_loss(n1, nor)
            loss = loss + a.kd_weight * distill((seg, log_d, n), (seg1.detach(), log_d1.detach(), n1.detach()))
            densities += full.soft_densities
        if densities:
            kl = torch.stack([kl_sparsity(a.rho_native, g).mean() for g in densities]).sum()
            loss = loss + a.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        hist.append([ls.item(), ld.item(), ln.item(), kl.item()])
        if (it + 1) % 25 == 0 or it + 1 == a.iters:
            el = time.time() - t0
            done = it + 1 - start
            m = np.mean(hist[-25:], axis=0)
            dens = [f"{h.mean().item():.2f}" for h in ctl.masks] if ctl.masks else []
            print(f"[{it + 1:5d}/{a.iters}] {'half' if src is half else 'full'} seg {m[0]:.3f} depth {m[1]:.3f} "
                  f"normal {m[2]:.3f} kl {m[3]:.3f} mode {ctl.mode}"
                  f"{'' if ctl.mode != 'budget' else f'({ctl.rho:.2f})'} tau {tau:.2f} lr {lr:.2e} "
                  f"densities [{' '.join(dens)}] | {(seconds_before + el) / 60:.1f} min, "
                  f"eta {el / done * (a.iters - it - 1) / 60:.1f} min", flush=True)
        if (it + 1) % 500 == 0 or it + 1 == a.iters:
            save(net, opt, rng, cfg, a, seconds_before + time.time() - t0, it + 1, ck_path, history)
    print(f"done in {(seconds_before + time.time() - t0) / 60:.1f} min", flush=True)


def distill(student, teacher):
    """Per-pixel means: KL(teacher ‖ student) of the class distributions, |Δ log-depth|, 1 − cos of
    the normals."""
    (seg, log_d, n), (seg_t, log_d_t, n_t) = student, teacher
    kd_seg = F.kl_div(F.log_softmax(seg, dim=1), F.log_softmax(seg_t, dim=1), log_target=True,
                      reduction="none").sum(dim=1).mean()
    kd_depth = (log_d - log_d_t).abs().mean()
    kd_normal = (1 - (n * n_t).sum(dim=1)).mean()
    return kd_seg + kd_depth + 0.25 * kd_normal


def save(net, opt, rng, cfg, args, seconds, iters, path, history=()):
    """Atomically: a checkpoint is either the old one or the new one, never half written."""
    tmp = path + ".tmp"
    torch.save({"config": cfg.to_dict(), "state_dict": net.state_dict(), "optimizer": opt.state_dict(),
                "rng": {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()},
                "training": {"seconds": seconds, "iterations": iters, "args": vars(args), "history": list(history),
                             "torch": torch.__version__, "threads": torch.get_num_threads()}}, tmp)
    os.replace(tmp, path)


def load(path):
    """(network in eval mode, checkpoint dict) from a checkpoint written by `save`."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    net = build(ck["config"])
    net.load_state_dict(ck["state_dict"])
    return net.eval(), ck


if __name__ == "__main__":
    main()
