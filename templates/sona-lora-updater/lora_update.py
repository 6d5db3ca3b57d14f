"""A LoRA-style update: train low-rank adapters A, B so that W + B @ A fits a target map."""

from __future__ import annotations

import torch


def update(steps: int = 200, rank: int = 4, dim: int = 32, seed: int = 0) -> dict[str, float]:
    torch.manual_seed(seed)
    base = torch.randn(dim, dim)
    target = base + torch.randn(dim, rank) @ torch.randn(rank, dim) * 0.1
    a = torch.zeros(rank, dim, requires_grad=True)
    b = (torch.randn(dim, rank) * 0.01).requires_grad_()
    x = torch.randn(256, dim)
    opt = torch.optim.Adam([a, b], lr=0.05)
    first = None
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(x @ (base + b @ a).T, x @ target.T)
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"loss_before": first or 0.0, "loss_after": float(loss), "delta_norm": float((b @ a).norm())}


if __name__ == "__main__":
    import json

    print(json.dumps(update()))
