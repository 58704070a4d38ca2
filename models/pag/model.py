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

    def __init__(self, cin, cout, k=1, stride=1, dilation=1, relu=True):
        super().__init__()
        pad = dilation * (k // 2)
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
    (computed in parallel with F's first 1×1); F = 1×1 → 3×3 → 1×1. With `gated=False`
    this is a plain residual bottleneck (the dense baseline)."""

    def __init__(self, c, mid, dilation=1, gated=True):
        super().__init__()
        self.gate = nn.Conv2d(c, 1, 1) if gated else None
        self.reduce = ConvBN(c, mid, 1)
        self.spatial = ConvBN(mid, mid, 3, dilation=dilation)
        self.expand = ConvBN(mid, c, 1, relu=False)
        if gated:
            nn.init.constant_(self.gate.bias, 2.0)  # start mostly open

    def forward(self, x, ctl: GateControl):
        f = self.expand(self.spatial(self.reduce(x)))
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


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
