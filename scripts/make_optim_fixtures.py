#!/usr/bin/python3
"""Reference optimizer trajectories from torch.optim (Debian python3-torch 1.13, foreach=False
single-tensor code paths) for tests/optim/test_torch_reference.cpp.

Problem: two parameters, `fc.weight` [7, 5] (weight decay on) and `fc.bias` [5] (its own param
group with weight decay 0, as our parameter groups exempt biases), loss
sum((tanh(A @ W + b) - Y)^2) with fixed A [3, 7], Y [3, 5]. Every step records the learning rate,
the gradients torch computed and the parameters after the step; the C++ test feeds the same
gradients, so only the update rule is compared. Every hyper-parameter and learning rate is a
float32 value (f32() below) because our settings are float32: torch then computes its Python
double scalars from exactly the numbers our code sees.

Output: tests/fixtures/optim/torch_trajectories.json (cases, shapes, offsets) and
torch_trajectories.bin (little-endian float32). Usage: /usr/bin/python3 scripts/make_optim_fixtures.py
"""
import json
import os

import numpy as np
import torch

STEPS = 25
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "optim")


def f32(x):
    return float(np.float32(x))


CASES = [
    dict(name="sgd_momentum", kind="sgd", lr=0.05, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.01),
    dict(name="sgd_nesterov", kind="sgd", lr=0.05, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.01),
    dict(name="sgd_dampening", kind="sgd", lr=0.05, momentum=0.9, dampening=0.3, nesterov=False, weight_decay=0.01),
    dict(name="sgd_plain", kind="sgd", lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.01),
    dict(name="adam", kind="adam", lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01),
    dict(name="adamw", kind="adamw", lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.05),
    dict(name="radam", kind="radam", lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01),
    dict(name="radam_b2_099", kind="radam", lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.01),
]


def make_optimizer(case, w, b):
    c = {k: (f32(v) if isinstance(v, float) else v) for k, v in case.items()}
    groups = [dict(params=[w], weight_decay=c["weight_decay"]), dict(params=[b], weight_decay=0.0)]
    if c["kind"] == "sgd":
        return torch.optim.SGD(groups, lr=c["lr"], momentum=c["momentum"], dampening=c["dampening"],
                               nesterov=c["nesterov"], foreach=False)
    betas = (c["beta1"], c["beta2"])
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "radam": torch.optim.RAdam}[c["kind"]]
    return cls(groups, lr=c["lr"], betas=betas, eps=c["eps"], foreach=False)


def run(case, floats):
    g = torch.Generator().manual_seed(1234)
    a = torch.randn(3, 7, generator=g)
    y = torch.randn(3, 5, generator=g) * 0.5
    w = (torch.randn(7, 5, generator=g) * 0.4).requires_grad_()
    b = (torch.randn(5, generator=g) * 0.1).requires_grad_()
    opt = make_optimizer(case, w, b)
    start = len(floats)
    floats.extend(w.detach().reshape(-1).tolist() + b.detach().tolist())
    for t in range(STEPS):
        lr = f32(case["lr"] * (1.0 - 0.02 * t))  # a varying lr: the schedule's value for step t
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        loss = ((torch.tanh(a @ w + b) - y) ** 2).sum()
        loss.backward()
        floats.append(lr)
        floats.extend(w.grad.reshape(-1).tolist() + b.grad.tolist())
        opt.step()
        floats.extend(w.detach().reshape(-1).tolist() + b.detach().tolist())
    meta = {k: (f32(v) if isinstance(v, float) else v) for k, v in case.items()}
    meta["offset"] = start
    return meta


def main():
    torch.set_num_threads(1)
    floats = []
    cases = [run(case, floats) for case in CASES]
    doc = {
        "torch_version": torch.__version__,
        "steps": STEPS,
        "params": [{"name": "fc.weight", "shape": [7, 5]}, {"name": "fc.bias", "shape": [5]}],
        "layout": "per case at `offset` floats: initial params (weight, bias); then per step: lr, "
                  "grads (weight, bias), params after the step (weight, bias)",
        "cases": cases,
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "torch_trajectories.json"), "w") as f:
        json.dump(doc, f, indent=1)
    np.asarray(floats, dtype="<f4").tofile(os.path.join(OUT, "torch_trajectories.bin"))


if __name__ == "__main__":
    main()
