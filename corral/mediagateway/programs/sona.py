# SONA LoRA update (offline template): the user's low-rank adapter on a frozen scorer is trained
# on new interactions, with an EWC-style penalty that keeps weights the Fisher information marks
# as important close to their previous values (online EWC: Fisher is a running average).
import json
import os

import torch

with open("/data/inputs.json") as f:
    inp = json.load(f)
dim, rank = int(inp["dim"]), int(inp["rank"])
lam = float(inp.get("ewc_lambda", 5.0))
steps = int(inp.get("steps", 60))
torch.manual_seed(int(inp.get("seed", 0)))
base = torch.randn(16, dim) / dim ** 0.5  # the frozen scorer's projection (same seed, same base)
head = torch.ones(16) / 16

if os.path.exists("/data/adapter.pt"):
    prev = torch.load("/data/adapter.pt")
    a0, b0 = prev["A"].clone(), prev["B"].clone()
    fisher_a, fisher_b = prev["fisher_A"], prev["fisher_B"]
    version = int(prev["version"])
else:
    a0, b0 = torch.zeros(rank, dim), torch.randn(16, rank) * 0.01
    fisher_a, fisher_b = torch.zeros(rank, dim), torch.zeros(16, rank)
    version = 0

x = torch.tensor([i["features"] for i in inp["interactions"]], dtype=torch.float32)
y = torch.tensor([i["reward"] for i in inp["interactions"]], dtype=torch.float32)
a = a0.clone().requires_grad_()
b = b0.clone().requires_grad_()
opt = torch.optim.SGD([a, b], lr=0.5)


def fit_loss():
    scores = (x @ (base + b @ a).T) @ head
    return torch.nn.functional.mse_loss(scores, y)


def ewc_penalty():
    return (fisher_a * (a - a0) ** 2).sum() + (fisher_b * (b - b0) ** 2).sum()


with torch.no_grad():
    loss_before = fit_loss().item()
for _ in range(steps):
    opt.zero_grad()
    loss = fit_loss() + lam * ewc_penalty()
    loss.backward()
    opt.step()

opt.zero_grad()
fit_loss().backward()  # squared gradients at the new point estimate the Fisher information
new_fisher_a = 0.5 * fisher_a + 0.5 * a.grad.detach() ** 2
new_fisher_b = 0.5 * fisher_b + 0.5 * b.grad.detach() ** 2
torch.save({"A": a.detach(), "B": b.detach(), "fisher_A": new_fisher_a, "fisher_B": new_fisher_b,
            "version": version + 1, "dim": dim, "rank": rank}, "/output/adapter.pt")
result = {"version": version + 1, "previous_version": version, "interactions": int(len(y)),
          "loss_before": round(loss_before, 6), "loss_after": round(fit_loss().item(), 6),
          "ewc_penalty": round(ewc_penalty().item(), 8), "delta_norm": round((b @ a).norm().item(), 6),
          "adapter": "adapter.pt"}
with open("/output/results.json", "w") as f:
    json.dump(result, f)
print(json.dumps(result))
