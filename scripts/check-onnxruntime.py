#!/usr/bin/env python3
"""Runs an exported model in onnxruntime and checks the ONNX contract:
inputs `pixels` (float32 [N,1,H,W]) and `label` (int64 [N], conditional
models only), output `logits` (float32 [N,K,H,W]), and the `pixelcnn`
metadata. Prints the architecture and a checksum of the logits.

usage: pip install onnxruntime numpy; scripts/check-onnxruntime.py MODEL.onnx
"""
import json, sys
import numpy as np
import onnxruntime as ort

path = sys.argv[1]
sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
arch = json.loads(sess.get_modelmeta().custom_metadata_map["pixelcnn"])
h, w, k, classes = arch["height"], arch["width"], arch["levels"], arch["classes"]
names = [i.name for i in sess.get_inputs()]
assert names == (["pixels", "label"] if classes else ["pixels"]), names
rng = np.random.default_rng(0)
n = 4
levels = rng.integers(0, k, size=(n, 1, h, w))
feeds = {"pixels": (levels / (k - 1)).astype(np.float32)}
if classes:
    feeds["label"] = np.arange(n, dtype=np.int64) % classes
(logits,) = sess.run(["logits"], feeds)
assert logits.shape == (n, k, h, w) and logits.dtype == np.float32, logits.shape
assert np.isfinite(logits).all()
logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(1, keepdims=True)
nll = -np.take_along_axis(logp, levels, 1).sum((1, 2, 3))
print(f"onnxruntime {ort.__version__}: {path} runs; arch {arch['variant']} {h}x{w} K={k} classes={classes}; "
      f"logits {logits.shape}; NLL of 4 random images {np.round(nll, 2).tolist()} nats")
