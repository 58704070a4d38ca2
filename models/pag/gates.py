"""Gate binarisation: the exact rules the ONNX graph and the Rust runtime share.

A gated layer has a *gate score* s (a logit, shape N×1×H×W). Its binary mask is
  * budget(ρ), ρ ∈ (0, 1]:  k = clamp(ceil(f32(ρ) · f32(H·W)), 1, H·W);  the k pixels with the
                            largest scores are active, ties broken towards the lower pixel index
                            (row-major). Exactly k pixels: a flat region cannot blow the budget.
  * native (ρ = 0):         mask = (s > 0)       (the gate's own decision: sigmoid(s) > 0.5)
ρ = 1 selects every pixel, i.e. the dense model.
"""
import torch
import torch.nn.functional as F


def order_desc(flat: torch.Tensor) -> torch.Tensor:
    """Pixel indices by descending score, ties by ascending index. Exported as ONNX TopK(k=n),
    whose specification breaks ties towards the lower index (as tract and onnxruntime do)."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return torch.topk(flat, flat.shape[1], dim=1, largest=True, sorted=True).indices
    return torch.sort(flat, dim=1, descending=True, stable=True).indices


def budget_mask(score: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """Exactly ⌈ρ·H·W⌉ active pixels per sample (see the module docstring). Export-friendly:
    static shapes only (a full sort, then a scatter of the first k ranks)."""
    n = score.shape[0]
    flat = score.reshape(n, -1)
    hw = flat.shape[1]
    k = torch.ceil(rho.to(torch.float32) * float(hw)).clamp(1.0, float(hw))
    keep = (torch.arange(hw, dtype=torch.float32, device=score.device).reshape(1, hw) < k).to(score.dtype).expand(n, hw)
    return torch.zeros_like(flat).scatter(1, order_desc(flat), keep).reshape(score.shape)


def native_mask(score: torch.Tensor) -> torch.Tensor:
    return (score > 0).to(score.dtype)


def eval_mask(score: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """The contract's binarisation: budget(ρ) when ρ > 0, native when ρ <= 0."""
    return torch.where(rho > 0, budget_mask(score, rho), native_mask(score))


def logistic_noise(like: torch.Tensor) -> torch.Tensor:
    u = torch.rand_like(like).clamp(1e-6, 1 - 1e-6)
    return torch.log(u) - torch.log1p(-u)


class GateControl:
    """How the gates binarise during one forward pass.

    mode "eval": the contract rule above (ρ tensor; ρ <= 0 means native).
    mode "native": Gumbel (binary concrete) straight-through sampling at temperature tau.
    mode "budget": hard top-k at ρ with a straight-through sigmoid(s / tau) gradient.
    """

    def __init__(self, mode: str, rho: float = 1.0, tau: float = 1.0):
        self.mode, self.rho, self.tau = mode, rho, tau
        self.soft_densities = []  # mean sigmoid(score) per gated layer (for the KL loss)
        self.masks = []

    def mask(self, score: torch.Tensor) -> torch.Tensor:
        if self.mode == "eval":
            m = eval_mask(score, torch.as_tensor([self.rho], dtype=torch.float32))
            self.masks.append(m)
            return m
        self.soft_densities.append(torch.sigmoid(score).mean(dim=(1, 2, 3)))
        if self.mode == "native":
            soft = torch.sigmoid((score + logistic_noise(score)) / self.tau)
            hard = (soft > 0.5).to(score.dtype)
        elif self.mode == "budget":
            soft = torch.sigmoid(score / self.tau)
            hard = budget_mask(score.detach(), torch.tensor([self.rho]))
        else:
            raise ValueError(f"unknown gate mode {self.mode}")
        m = hard + soft - soft.detach()
        self.masks.append(hard)
        return m

    def select(self, logits: torch.Tensor) -> torch.Tensor:
        """One-hot branch selection for MultiPool (N×P×H×W)."""
        idx = logits.argmax(dim=1, keepdim=True)
        if self.mode == "eval":
            return one_hot_channels(idx, logits.shape[1], logits.dtype)
        g = -torch.log(-torch.log(torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)))
        soft = F.softmax((logits + g) / self.tau, dim=1)
        hard = one_hot_channels(soft.argmax(dim=1, keepdim=True), logits.shape[1], logits.dtype)
        return hard + soft - soft.detach()


def one_hot_channels(idx: torch.Tensor, p: int, dtype) -> torch.Tensor:
    ids = torch.arange(p, dtype=idx.dtype, device=idx.device).reshape(1, p, 1, 1)
    return (idx == ids).to(dtype)


def kl_sparsity(rho: float, g: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Paper eq. 5, per layer: KL(ρ || g) with g the mean soft gate activation."""
    g = g.clamp(eps, 1 - eps)
    return rho * torch.log(rho / g) + (1 - rho) * torch.log((1 - rho) / (1 - g))
