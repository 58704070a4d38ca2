"""Task losses as in the paper: cross-entropy; log-depth ‖D−D̂‖² + γ‖D−D̂‖₁ (γ=2);
normals −nᵀn̂ + λ·acos(nᵀn̂) (λ=4) after L2 normalisation."""
import torch
import torch.nn.functional as F

GAMMA_DEPTH = 2.0
LAMBDA_NORMAL = 4.0


def seg_loss(logits, label):
    return F.cross_entropy(logits, label, ignore_index=255)


def depth_loss(log_depth_pred, depth_gt):
    valid = torch.isfinite(depth_gt) & (depth_gt > 0)
    d = (log_depth_pred - torch.log(depth_gt.clamp_min(1e-3)))[valid]
    return (d * d).mean() + GAMMA_DEPTH * d.abs().mean()


def normal_loss(n_pred, n_gt):
    cos = (n_pred * n_gt).sum(dim=1).clamp(-1 + 1e-6, 1 - 1e-6)
    return (-cos + LAMBDA_NORMAL * torch.acos(cos)).mean()
