"""PAG network: a small ResNet-style encoder with gated bottleneck blocks (paper eq. 1-2),
one MultiPool block, a light decoder with a skip connection, and three heads
(segmentation logits, metric depth, unit surface normals)."""
from dataclasses import dataclass, field, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .gates import GateControl

DILATIONS = (0, 1, 2, 4, 6, 8, 10)


class ConvBN(nn.Module):
    """Conv → BatchNorm (→ ReLU). `fuse()` folds the BN for export."""

    def __init__(self, cin, cout, k=1, stride=1, dilation=1, relu=True, pad=None):
        super().__init__()
        pad = dilation * (k // 2) if pad is None else pad
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = relu

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x

    @torch.no_grad()
    def fuse(self):
        c, bn = self.conv, self.bn
        fused = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding,
                          dilation=c.dilation, bias=True)
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused.weight.copy_(c.weight * scale.reshape(-1, 1, 1, 1))
        fused.bias.copy_(bn.bias - bn.running_mean * scale)
        return FusedConv(fused, self.relu)


class FusedConv(nn.Module):
    def __init__(self, conv, relu):
        super().__init__()
        self.conv, self.relu = conv, relu

    def forward(self, x):
        x = self.conv(x)
        return F.relu(x) if self.relu else x


def fuse_all(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, ConvBN):
            setattr(module, name, child.fuse())
        else:
            fuse_all(child)
    return module


class GatedBottleneck(nn.Module):
    """O = I + G ⊙ F(I): G is a per-pixel binary mask from a 1×1 gate on the block input
    (computed in parallel with F's first 1×1); F = 1×1 → 3×3 → 1×1. With `multipool=True` the
    3×3 is a MultiPool (one dilated 3×3 per pixel), so a pixel runs its branch only where the
    gate is open, and there only the one dilation its selector picks (contract version 2).
    With `gated=False` this is a plain residual bottleneck (the dense baseline)."""

    def __init__(self, c, mid, dilation=1, gated=True, multipool=False):
        super().__init__()
        self.gate = nn.Conv2d(c, 1, 1) if gated else None
        self.reduce = ConvBN(c, mid, 1)
        self.multipool = multipool
        self.spatial = MultiPool(mid) if multipool else ConvBN(mid, mid, 3, dilation=dilation)
        self.expand = ConvBN(mid, c, 1, relu=False)
        if gated:
            nn.init.constant_(self.gate.bias, 2.0)  # start mostly open

    def forward(self, x, ctl: GateControl):
        r = self.reduce(x)
        f = self.expand(self.spatial(r, ctl) if self.multipool else self.spatial(r))
        if self.gate is None:
            return x + f
        return x + ctl.mask(self.gate(x)) * f


class MultiPool(nn.Module):
    """One dilated 3×3 per pixel among DILATIONS (0 = copy the input), chosen by a 1×1
    selector (hard argmax at test, Gumbel-softmax straight-through in training)."""

    def __init__(self, c):
        super().__init__()
        self.selector = nn.Conv2d(c, len(DILATIONS), 1)
        self.branches = nn.ModuleList(
            [nn.Identity() if d == 0 else ConvBN(c, c, 3, dilation=d) for d in DILATIONS])

    def forward(self, x, ctl: GateControl):
        onehot = ctl.select(self.selector(x))
        out = None
        for i, branch in enumerate(self.branches):
            term = onehot[:, i:i + 1] * branch(x)
            out = term if out is None else out + term
        return out


class MultiPoolBottleneck(nn.Module):
    """Residual bottleneck whose 3×3 is a MultiPool (paper Fig. 3, placed at the second-to-last
    stage). Not pixel-gated: every pixel runs exactly one branch."""

    def __init__(self, c, mid):
        super().__init__()
        self.reduce = ConvBN(c, mid, 1)
        self.pool = MultiPool(mid)
        self.expand = ConvBN(mid, c, 1, relu=False)

    def forward(self, x, ctl):
        return x + self.expand(self.pool(self.reduce(x), ctl))


@dataclass
class NetConfig:
    arch: str = "v1"
    num_classes: int = 8
    stem: int = 24
    widths: tuple = (32, 64, 96)
    mids: tuple = (16, 24, 32)
    blocks: tuple = (2, 3, 3)  # stage 3: blocks before and after the MultiPool block
    multipool: bool = True
    gated: bool = True
    decoder: int = 32

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class PagNet(nn.Module):
    """Input N×3×H×W (normalised RGB, H and W multiples of 8). Outputs at input resolution:
    seg_logits N×K×H×W, depth N×1×H×W (metres, > 0), normals N×3×H×W (unit, camera optical
    frame: x right, y down, z forward)."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        w1, w2, w3 = cfg.widths
        m1, m2, m3 = cfg.mids
        b1, b2, b3 = cfg.blocks
        g = cfg.gated
        self.stem = nn.Sequential(ConvBN(3, cfg.stem, 3, stride=2), ConvBN(cfg.stem, w1, 3, stride=2))
        self.stage1 = nn.ModuleList([GatedBottleneck(w1, m1, gated=g) for _ in range(b1)])
        self.down2 = ConvBN(w1, w2, 3, stride=2)
        self.stage2 = nn.ModuleList([GatedBottleneck(w2, m2, gated=g) for _ in range(b2)])
        self.trans3 = ConvBN(w2, w3, 1)
        half = b3 // 2
        s3 = [GatedBottleneck(w3, m3, dilation=2, gated=g) for _ in range(half)]
        if cfg.multipool:
            s3.append(MultiPoolBottleneck(w3, m3))
        s3 += [GatedBottleneck(w3, m3, dilation=2, gated=g) for _ in range(b3 - half)]
        self.stage3 = nn.ModuleList(s3)
        d = cfg.decoder
        self.lateral_deep = ConvBN(w3, d, 1)
        self.lateral_skip = ConvBN(w1, d, 1)
        self.fuse = ConvBN(d, d, 3)
        self.head = nn.Conv2d(d, cfg.num_classes + 1 + 3, 1)

    def forward(self, x, ctl: GateControl):
        h, w = x.shape[-2:]
        s1 = self.stem(x)
        for blk in self.stage1:
            s1 = blk(s1, ctl)
        s = self.down2(s1)
        for blk in self.stage2:
            s = blk(s, ctl)
        s = self.trans3(s)
        for blk in self.stage3:
            s = blk(s, ctl)
        up = F.interpolate(self.lateral_deep(s), scale_factor=2.0, mode="bilinear", align_corners=False)
        y = self.fuse(up + self.lateral_skip(s1))
        y = F.interpolate(self.head(y), size=(h, w), mode="bilinear", align_corners=False)
        k = self.cfg.num_classes
        seg = y[:, :k]
        log_depth = y[:, k:k + 1]
        n = y[:, k + 1:k + 4]
        n = n / torch.sqrt((n * n).sum(dim=1, keepdim=True) + 1e-12)
        return seg, log_depth, n


class ExportWrapper(nn.Module):
    """Graph inputs (image, rho) → outputs (seg_logits, depth, normals) per the PAG contract."""

    def __init__(self, net: PagNet):
        super().__init__()
        self.net = net

    def forward(self, image, rho):
        ctl = ExportGates(rho)
        seg, log_depth, normals = self.net(image, ctl)
        return seg, torch.exp(log_depth), normals


class ExportGates(GateControl):
    def __init__(self, rho: torch.Tensor):
        super().__init__("eval")
        self.rho_t = rho

    def mask(self, score):
        from .gates import eval_mask
        return eval_mask(score, self.rho_t)


@dataclass
class NetConfigV2:
    """Model v2: most MACs inside gated branches (models/shipped/MODEL_CARD.md).

    Stem 3×3/2 (3→stem) and 2×2/2 (stem→c1) to 1/4 resolution; stage 1: `blocks1` gated
    bottlenecks (c1, mid1); 2×2/2 down to 1/8 (c1→c2); stage 2: gated bottlenecks (c2, mid2) with
    `dilations2` (0 marks the gated MultiPool block); a 1×1 lateral (c2→c1), ×2 bilinear, added to
    stage 1's output; `blocks_dec` gated refinement bottlenecks (c1, mid1); a 1×1 head, ×4
    bilinear. Every transition is thin and every bottleneck is gated."""
    arch: str = "v2"
    num_classes: int = 8
    stem: int = 16
    c1: int = 48
    mid1: int = 32
    blocks1: int = 2
    c2: int = 96
    mid2: int = 64
    dilations2: tuple = (1, 2, 0, 2, 1)
    blocks_dec: int = 2
    gated: bool = True

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class PagNetV2(nn.Module):
    """Input N×3×H×W (normalised RGB, H and W multiples of 8). Outputs as PagNet."""

    def __init__(self, cfg: NetConfigV2):
        super().__init__()
        self.cfg = cfg
        g = cfg.gated
        self.stem = nn.Sequential(ConvBN(3, cfg.stem, 3, stride=2),
                                  ConvBN(cfg.stem, cfg.c1, 2, stride=2, pad=0))
        self.stage1 = nn.ModuleList([GatedBottleneck(cfg.c1, cfg.mid1, gated=g) for _ in range(cfg.blocks1)])
        self.down2 = ConvBN(cfg.c1, cfg.c2, 2, stride=2, pad=0)
        self.stage2 = nn.ModuleList([
            GatedBottleneck(cfg.c2, cfg.mid2, dilation=max(d, 1), gated=g, multipool=(d == 0))
            for d in cfg.dilations2])
        self.lateral = ConvBN(cfg.c2, cfg.c1, 1)
        self.decoder = nn.ModuleList([GatedBottleneck(cfg.c1, cfg.mid1, gated=g) for _ in range(cfg.blocks_dec)])
        self.head = nn.Conv2d(cfg.c1, cfg.num_classes + 1 + 3, 1)

    def forward(self, x, ctl: GateControl):
        h, w = x.shape[-2:]
        s1 = self.stem(x)
        for blk in self.stage1:
            s1 = blk(s1, ctl)
        s = self.down2(s1)
        for blk in self.stage2:
            s = blk(s, ctl)
        y = F.interpolate(self.lateral(s), scale_factor=2.0, mode="bilinear", align_corners=False) + s1
        for blk in self.decoder:
            y = blk(y, ctl)
        y = F.interpolate(self.head(y), size=(h, w), mode="bilinear", align_corners=False)
        k = self.cfg.num_classes
        seg = y[:, :k]
        log_depth = y[:, k:k + 1]
        n = y[:, k + 1:k + 4]
        n = n / torch.sqrt((n * n).sum(dim=1, keepdim=True) + 1e-12)
        return seg, log_depth, n


def build(cfg_dict: dict) -> nn.Module:
    """The network a checkpoint's config describes (v1 configs have no `arch`)."""
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg_dict.items()}
    if d.get("arch", "v1") == "v2":
        return PagNetV2(NetConfigV2(**d))
    return PagNet(NetConfig(**{**d, "arch": "v1"}))


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
