#!/usr/bin/python3
"""Parity fixtures for the C++ ViT / Performer (tests/nn/test_vit_parity.cpp).

Builds tiny timm-style models in PyTorch (Debian's python3-torch; timm itself is not needed and
not used), with random (not init-like, so every path carries signal) float32 weights, a random
input batch and labels, and writes one safetensors file per model into tests/fixtures/nn/:

  <timm parameter name>          the weights (patch_embed.proj.weight in conv layout [D, C, P, P])
  blocks.i.attn.projection_matrix  FAVOR+ projection [F, d] (fixed here, never redrawn)
  input [B, C, H, W], labels [B] (class ids stored as F32), logits [B, K], loss [1]
  grad:<timm parameter name>     d(loss)/d(parameter), same shape as the parameter
  __metadata__                   the config (image_size, channels, ...), all strings

The FAVOR+ math follows our ops.hpp / kernels/favor.cpp exactly (eps placement, stabilisers,
d^-1/4 data scaling); it is NOT lucidrains' formula (eps outside the 1/sqrt(F)) nor torch_ref.py's.
Run from the repository root:  /usr/bin/python3 scripts/make_model_fixtures.py
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-6
FAVOR_EPS = 1e-6
SMOOTHING = 0.1


# ---------------------------------------------------------------- FAVOR+ (our formula)
def favor_attention(q, k, v, w, kernel, eps):
    """q, k, v: [B, H, N, d]; w: [F, d] -> [B, H, N, d]. Linear in N: no N x N matrix."""
    d = q.shape[-1]
    f = w.shape[0]
    if kernel == "softmax":
        def feats(x, is_query):
            x = x * d ** -0.25
            u = x @ w.t()                                  # [B, H, N, F]
            sq = 0.5 * (x * x).sum(-1, keepdim=True)       # [B, H, N, 1]
            if is_query:  # per-row stabiliser
                s = u.amax(dim=-1, keepdim=True).detach()
            else:         # per-(sample, head) stabiliser over tokens and features
                s = u.amax(dim=(-2, -1), keepdim=True).detach()
            return torch.exp(u - sq - s) * f ** -0.5 + eps
    else:  # generalized attention, ReLU kernel: relu(w.x') + eps, x' = x d^-1/4
        def feats(x, is_query):
            del is_query
            x = x * d ** -0.25
            return torch.relu(x @ w.t()) + eps  # no 1/sqrt(F) here (kernels/favor.hpp)
    qp, kp = feats(q, True), feats(k, False)               # [B, H, N, F]
    ctx = kp.transpose(-2, -1) @ v                         # [B, H, F, d]
    den = qp @ kp.sum(dim=-2).unsqueeze(-1)                # [B, H, N, 1]
    return (qp @ ctx) / den


def orthogonal_features(m, d, gen):
    """[m, d]: QR blocks with rows rescaled by chi_d norms (any fixed matrix works for parity)."""
    blocks = []
    full, rem = divmod(m, d)
    for i in range(full + (1 if rem else 0)):
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen))
        q = q.t()
        blocks.append(q if i < full else q[:rem])
    w = torch.cat(blocks, 0)
    return w * torch.randn(m, d, generator=gen).norm(dim=1, keepdim=True)


# ---------------------------------------------------------------- timm-named model
class Attention(nn.Module):
    def __init__(self, dim, heads, kind, kernel, projection):
        super().__init__()
        self.heads, self.kind, self.kernel = heads, kind, kernel
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)
        if kind == "favor":
            self.register_buffer("projection_matrix", projection)

    def forward(self, x):
        B, N, D = x.shape
        dh = D // self.heads
        # timm layout: qkv rows are q, k, v blocks, each head-major
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                   # [B, H, N, d]
        if self.kind == "softmax":
            a = ((q * dh ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
            o = a @ v
        else:
            o = favor_attention(q, k, v, self.projection_matrix, self.kernel, FAVOR_EPS)
        return self.proj(o.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class Block(nn.Module):
    def __init__(self, dim, heads, hidden, kind, kernel, projection):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads, kind, kernel, projection)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, channels, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, stride=patch)  # weight [D, C, P, P]

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, D], patches row-major


class ViT(nn.Module):
    """timm VisionTransformer names; pool 'cls' (norm -> head on token 0) or 'mean'
    (timm global_pool='avg': mean over patch tokens, cls excluded, then fc_norm -> head)."""

    def __init__(self, cfg, projections=None):
        super().__init__()
        c = cfg
        n = (c["image_size"] // c["patch_size"]) ** 2
        hidden = int(c["dim"] * c["mlp_ratio"])
        self.pool = c["pool"]
        self.patch_embed = PatchEmbed(c["channels"], c["patch_size"], c["dim"])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c["dim"]))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, c["dim"]))
        self.blocks = nn.ModuleList(
            Block(c["dim"], c["heads"], hidden, c["attention"], c.get("kernel", "softmax"),
                  projections[i] if projections else None)
            for i in range(c["depth"]))
        if self.pool == "cls":
            self.norm = nn.LayerNorm(c["dim"], eps=LN_EPS)
        else:
            self.fc_norm = nn.LayerNorm(c["dim"], eps=LN_EPS)
        self.head = nn.Linear(c["dim"], c["num_classes"])

    def forward(self, x):
        t = self.patch_embed(x)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1) + self.pos_embed
        for blk in self.blocks:
            t = blk(t)
        if self.pool == "cls":
            return self.head(self.norm(t)[:, 0])
        return self.head(self.fc_norm(t[:, 1:].mean(dim=1)))


# ---------------------------------------------------------------- safetensors writer
def write_safetensors(path, tensors, metadata):
    """u64 LE header length, JSON header (padded with spaces to 8 bytes), raw LE f32 data."""
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        raw = struct.pack("<%df" % t.numel(), *t.flatten().tolist())
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    return 8 + len(text) + offset


def randomize(model, gen):
    """Weights of O(1/sqrt(fan_in)) scale and non-trivial norms/biases so that every
    parameter gets a gradient well above float32 noise."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or \
                    name in ("norm.weight", "fc_norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif p.dim() >= 2 and name not in ("cls_token", "pos_embed"):
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))


def make(cfg, out_path, seed):
    gen = torch.Generator().manual_seed(seed)
    projections = None
    if cfg["attention"] == "favor":
        d = cfg["dim"] // cfg["heads"]
        projections = [orthogonal_features(cfg["features"], d, gen) for _ in range(cfg["depth"])]
    model = ViT(cfg, projections)
    randomize(model, gen)
    b, c, s = cfg["batch"], cfg["channels"], cfg["image_size"]
    x = torch.randn(b, c, s, s, generator=gen)
    y = torch.randint(0, cfg["num_classes"], (b,), generator=gen)
    logits = model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=SMOOTHING)
    loss.backward()

    tensors = {"input": x, "labels": y.to(torch.float32), "logits": logits,
               "loss": loss.reshape(1)}
    for name, p in model.named_parameters():
        tensors[name] = p
        tensors["grad:" + name] = p.grad
    for name, buf in model.named_buffers():
        tensors[name] = buf
    meta = {k: str(v) for k, v in cfg.items()}
    meta["ln_eps"] = str(LN_EPS)
    meta["favor_eps"] = str(FAVOR_EPS)
    meta["smoothing"] = str(SMOOTHING)
    meta["generator"] = "scripts/make_model_fixtures.py (torch %s)" % torch.__version__
    size = write_safetensors(out_path, tensors, meta)
    print("%s: %d bytes, loss %.6f" % (out_path, size, loss.item()))
    assert size < 100_000


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "tests", "fixtures", "nn")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    base = dict(image_size=8, channels=3, patch_size=4, dim=16, depth=2, heads=2, mlp_ratio=2.0,
                num_classes=3, batch=3, pool="cls", attention="softmax")
    make(dict(base), os.path.join(out, "vit_tiny.safetensors"), 1)
    # d = 8: features = floor(8 ln 8) = 16, the default
    make(dict(base, attention="favor", kernel="softmax", features=16),
         os.path.join(out, "performer_tiny.safetensors"), 2)
    # generalized (ReLU) Performer, 1 channel, mean pooling: covers the other options cheaply
    make(dict(base, channels=1, attention="favor", kernel="relu", features=12, pool="mean"),
         os.path.join(out, "performer_relu_tiny.safetensors"), 3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
