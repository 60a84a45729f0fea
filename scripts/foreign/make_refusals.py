#!/usr/bin/env python3
"""Small ONNX files the importer must refuse, each with its reason: written
with PyTorch (untrained, a few KB each) into tests/fixtures/foreign/refuse/.

    /work/venv-fixtures/bin/python scripts/foreign/make_refusals.py [OUT_DIR]

Each model reads a float image [N, 1, 28, 28] and returns [N, 2, 28, 28]
logits (except where the refused part changes the size).
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/foreign/refuse"
torch.manual_seed(0)


def masked(k, include_centre):
    """A k×k conv with the future taps zeroed (mask A or B)."""
    conv = nn.Conv2d(1, 4, k, padding=k // 2)
    mask = torch.ones_like(conv.weight)
    c = k // 2
    mask[:, :, c, c + (0 if not include_centre else 1):] = 0
    mask[:, :, c + 1:, :] = 0
    with torch.no_grad():
        conv.weight *= mask
    return conv


class Acausal(nn.Module):
    """Mask B on the first layer: each logit sees its own pixel."""
    def __init__(self):
        super().__init__()
        self.a = masked(3, include_centre=True)
        self.out = nn.Conv2d(4, 2, 1)
    def forward(self, x):
        return self.out(F.relu(self.a(x)))


class Unmasked(nn.Module):
    """A plain 3×3 convolution: sees the pixels below and to the right."""
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.out = nn.Conv2d(4, 2, 1)
    def forward(self, x):
        return self.out(F.relu(self.a(x)))


class Strided(nn.Module):
    """A stride-2 convolution and an upsampling back (PixelCNN++'s U-net)."""
    def __init__(self):
        super().__init__()
        self.a = masked(3, include_centre=False)
        self.down = nn.Conv2d(4, 4, 2, stride=2)
        self.out = nn.Conv2d(4, 2, 1)
    def forward(self, x):
        h = self.down(F.relu(self.a(x)))
        return self.out(F.interpolate(h, scale_factor=2.0, mode="nearest"))


class Pooled(nn.Module):
    """Max pooling."""
    def __init__(self):
        super().__init__()
        self.a = masked(3, include_centre=False)
        self.out = nn.Conv2d(4, 2, 1)
    def forward(self, x):
        return self.out(F.max_pool2d(F.relu(self.a(x)), 3, stride=1, padding=1))


class Attention(nn.Module):
    """Self-attention over positions (PixelSNAIL-style, unmasked)."""
    def __init__(self):
        super().__init__()
        self.a = masked(3, include_centre=False)
        self.q = nn.Conv2d(4, 4, 1)
        self.k = nn.Conv2d(4, 4, 1)
        self.out = nn.Conv2d(4, 2, 1)
    def forward(self, x):
        h = F.relu(self.a(x))
        n, c, hh, ww = h.shape
        q = self.q(h).flatten(2)          # [N, C, HW]
        k = self.k(h).flatten(2)
        att = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # [N, HW, HW]
        v = (h.flatten(2) @ att.transpose(1, 2)).view(n, c, hh, ww)
        return self.out(v)


class Grouped(nn.Module):
    """A depthwise (grouped) convolution."""
    def __init__(self):
        super().__init__()
        self.a = masked(3, include_centre=False)
        self.dw = nn.Conv2d(4, 4, 1, groups=4)
        self.out = nn.Conv2d(4, 2, 1)
    def forward(self, x):
        return self.out(self.dw(F.relu(self.a(x))))


os.makedirs(OUT, exist_ok=True)
for name, model in [
    ("acausal_mask_b_first", Acausal()),
    ("unmasked_conv", Unmasked()),
    ("strided_upsampled", Strided()),
    ("max_pool", Pooled()),
    ("attention", Attention()),
    ("grouped_conv", Grouped()),
]:
    model.eval()
    path = os.path.join(OUT, f"{name}.onnx")
    torch.onnx.export(
        model, torch.zeros(1, 1, 28, 28), path, input_names=["input"], output_names=["logits"],
        opset_version=17, dynamo=False, dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    print(path, os.path.getsize(path))
