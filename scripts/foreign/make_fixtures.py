#!/usr/bin/env python3
"""Builds small ONNX fixtures of PixelCNNs written "as other people write them".

Each fixture is our own re-implementation of a style found in public code
(see the survey shared/docs/foreign-models.md), trained for a couple of
minutes on MNIST on one CPU thread, exported to ONNX, and checked with
onnxruntime: export matches the framework, and the graph is causal (the
logits at pixel p do not move when any pixel >= p in raster order changes).

    # PyTorch fixtures (venv with torch, onnx, onnxruntime):
    nice -n 15 python scripts/foreign/make_fixtures.py --only torch_reduced_skips
    # Keras fixtures (venv with tensorflow-cpu, tf2onnx, onnxruntime):
    nice -n 15 python scripts/foreign/make_fixtures.py --only keras_gated_nhwc

Fixtures: torch_reduced_skips, torch_embed_classes, torch_dilated_elu,
torch_plain_bn, keras_gated_nhwc (also writes keras_gated_nhwc_approx).
Without --only, every fixture whose framework imports is built.

Other options: --seconds S (training time per model, default 150),
--out DIR (default tests/fixtures/foreign), --data DIR (MNIST IDX files,
default shared/data/mnist in or beside the checkout), --check-only (re-run the onnxruntime checks on
existing files), --write-index (rewrite fixtures.json only),
--write-levels DIR (write t10k level files for ort_nll.py and stop).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import ort_nll  # noqa: E402  (shared IDX reader, input/output conversion, NLL)

H = W = 28
BINARIZE_SEED = 1234  # Bernoulli(intensity/255), drawn once per split

# What the importer needs to know about each file (written to fixtures.json).
FIXTURES = {
    "torch_reduced_skips": dict(framework="torch", input_name="input", input_kind="unit",
                                label_input=None, k=2, classes=0, output_layout="bernoulli"),
    "torch_embed_classes": dict(framework="torch", input_name="input", input_kind="index",
                                label_input="label", k=4, classes=10, output_layout="nchw"),
    "torch_dilated_elu": dict(framework="torch", input_name="input", input_kind="index",
                              label_input=None, k=256, classes=0, output_layout="nkchw"),
    "torch_plain_bn": dict(framework="torch", input_name="input", input_kind="unit",
                           label_input=None, k=256, classes=0, output_layout="nchw"),
    "keras_gated_nhwc": dict(framework="keras", input_name="input", input_kind="unit",
                             label_input=None, k=2, classes=0, output_layout="nhwc"),
    "keras_gated_nhwc_approx": dict(framework="keras", input_name="input", input_kind="unit",
                                    label_input=None, k=2, classes=0, output_layout="nhwc",
                                    built_by="keras_gated_nhwc"),
}


# ----------------------------------------------------------------------------
# data


def quantize(images, k, split):
    """uint8 intensities -> levels 0..k-1 (the project's conventions)."""
    if k == 256:
        return images.copy()
    if k == 2:
        seed = BINARIZE_SEED + (0 if split == "train" else 1)
        rng = np.random.default_rng(seed)
        return (rng.random(images.shape) < images / 255.0).astype(np.uint8)
    return ((images.astype(np.int64) * k) // 256).astype(np.uint8)


def load_split(data_dir, split, k, count=None):
    prefix = "train" if split == "train" else "t10k"
    imgs = ort_nll.read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = ort_nll.read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    lv = quantize(imgs, k, split)
    if split == "train":  # the published protocol: first 50,000 for training
        lv, labels = lv[:50000], labels[:50000]
    if count is not None:
        lv, labels = lv[:count], labels[:count]
    return lv, labels.astype(np.int64)


# ----------------------------------------------------------------------------
# onnxruntime checks shared by both frameworks


def ort_logits(sess, levels, meta, labels=None):
    image_arg, label_arg = ort_nll.find_inputs(sess)
    feeds = {image_arg.name: ort_nll.levels_to_input(levels, image_arg, meta["input_kind"], meta["k"])}
    if label_arg is not None:
        feeds[label_arg.name] = labels.astype(np.int64)
    out = sess.run(None, feeds)[0]
    return ort_nll.output_to_logits(out, meta["k"], H, W, meta["output_layout"] == "bernoulli")


def check_causal(path, meta, chunk=56, seed=7):
    """For every pixel p: perturb all pixels >= p; the logits at p must not move.
    Also counts the pixels whose logits do move when the pixels < p change, when
    only the pixel directly above changes, and when only the pixel to the left does."""
    sess = ort_nll.make_session(path)
    k, P = meta["k"], H * W
    rng = np.random.default_rng(seed)
    base = rng.integers(0, k, size=(1, H, W)).astype(np.uint8)
    lab = lambda n: np.full((n,), 3, dtype=np.int64) if meta["classes"] else None  # noqa: E731
    ref = ort_logits(sess, base, meta, lab(1)).reshape(P, -1)
    worst_future = 0.0
    moved = {"past": 0, "above": 0, "left": 0}
    for start in range(0, P, chunk):
        ps = list(range(start, min(P, start + chunk)))
        sets = {n: np.repeat(base.reshape(1, P), len(ps), 0).astype(np.int64)
                for n in ("future", "past", "above", "left")}
        for i, p in enumerate(ps):
            sets["future"][i, p:] = (sets["future"][i, p:] + rng.integers(1, k, size=P - p)) % k
            sets["past"][i, :p] = (sets["past"][i, :p] + rng.integers(1, k, size=p)) % k
            if p >= W:
                sets["above"][i, p - W] = (sets["above"][i, p - W] + 1) % k
            if p % W:
                sets["left"][i, p - 1] = (sets["left"][i, p - 1] + 1) % k
        outs = {n: ort_logits(sess, x.reshape(-1, H, W).astype(np.uint8), meta, lab(len(ps))).reshape(len(ps), P, -1)
                for n, x in sets.items()}
        for i, p in enumerate(ps):
            worst_future = max(worst_future, float(np.abs(outs["future"][i, p] - ref[p]).max()))
            for n in moved:
                if float(np.abs(outs[n][i, p] - ref[p]).max()) > 1e-6:
                    moved[n] += 1
    return {"max_logit_change_from_future": worst_future,
            "pixels_moved_by_past": f"{moved['past']}/{P - 1}",
            "pixels_moved_by_pixel_above": f"{moved['above']}/{P - W}",
            "pixels_moved_by_pixel_left": f"{moved['left']}/{P - H}"}


def onnx_summary(path):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    inits = {t.name: t for t in m.graph.initializer}
    n_params = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    zero_taps, tiny_taps, conv_w = 0, 0, 0
    for n in m.graph.node:
        if n.op_type == "Conv" and n.input[1] in inits:
            w = numpy_helper.to_array(inits[n.input[1]])
            conv_w += w.size
            zero_taps += int((w == 0).sum())
            tiny_taps += int(((w != 0) & (np.abs(w) < 1e-5)).sum())
    io = lambda vs: [(v.name, v.type.tensor_type.elem_type,  # noqa: E731
                      [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]) for v in vs]
    return {"bytes": os.path.getsize(path), "opset": [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")],
            "ops": dict(sorted(ops.items())), "parameters": n_params,
            "conv_weights": conv_w, "conv_zero_weights": zero_taps, "conv_tiny_nonzero_weights": tiny_taps,
            "inputs": io(m.graph.input), "outputs": io(m.graph.output)}


def ort_test_nll(path, meta, data_dir, count=500):
    lv, labels = load_split(data_dir, "test", meta["k"], count)
    res = ort_nll.evaluate(path, lv, meta["k"], meta["input_kind"], labels if meta["classes"] else None,
                           meta["output_layout"] == "bernoulli", batch=50, time_runs=30)
    return {"test_nll_first_%d" % count: res["nats_per_image"], "ms_per_full_pass": res["ms_per_full_pass"]}


def finish(name, path, meta, data_dir, extra, tol=1e-6):
    summary = {"fixture": name, **extra}
    summary["onnx"] = onnx_summary(path)
    summary["causality"] = check_causal(path, meta)
    summary["causal"] = summary["causality"]["max_logit_change_from_future"] <= tol
    summary.update(ort_test_nll(path, meta, data_dir))
    print(json.dumps(summary, indent=1), flush=True)
    os.makedirs("/tmp/foreign-fixtures", exist_ok=True)
    with open(f"/tmp/foreign-fixtures/{name}.json", "w") as f:
        json.dump(summary, f, indent=1)
    if not summary["causal"]:
        print(f"WARNING: {name}: logits move by {summary['causality']['max_logit_change_from_future']:.3g} "
              f"when later pixels change (tolerance {tol})", flush=True)
    return summary


def batches(lv, labels, batch, rng):
    n = lv.shape[0]
    while True:
        idx = rng.integers(0, n, size=batch)
        yield lv[idx], labels[idx]


# ----------------------------------------------------------------------------
# PyTorch models


def torch_models():
    """Defines the PyTorch model classes (imports torch only when needed)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def gate(x):
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    # 1. reduced kernels + crop, per-layer skips, one Bernoulli logit ----------
    class ReducedLayer(nn.Module):
        def __init__(self, cin, c, k, first):
            super().__init__()
            self.first = first
            # vertical stack: 1 x k across the row, then (k//2+1) x 1 down the
            # column with k//2+1 rows of padding; keeping the first H rows of the
            # result puts rows i-k//2-1 .. i-1 under output row i (down-shift built in)
            self.v_row = nn.Conv2d(cin, 2 * c, (1, k), padding=(0, k // 2))
            self.v_col = nn.Conv2d(2 * c, 2 * c, (k // 2 + 1, 1), padding=(k // 2 + 1, 0))
            self.v_self = nn.Conv2d(cin, 2 * c, 1)
            self.v_to_h = nn.Conv2d(2 * c, 2 * c, 1)
            # horizontal: 1 x (k//2+1), padding on both sides, keep the first W
            # columns: columns j-k//2 .. j (one further left in the first layer)
            hp = k // 2 + 1 if first else k // 2
            self.h_conv = nn.Conv2d(cin, 2 * c, (1, k // 2 + 1), padding=(0, hp))
            self.h_out = nn.Conv2d(c, c, 1)
            self.skip = nn.Conv2d(c, c, 1)

        def forward(self, v, h):
            rows, cols = v.shape[2], v.shape[3]
            v_pre = self.v_col(self.v_row(v))[:, :, :rows, :]
            h_pre = self.h_conv(h)[:, :, :, :cols] + self.v_to_h(v_pre)
            # "vstack + 1x1(vstack_input)": adds the current row; only the next
            # layer's shifted column conv reads it
            v_next = gate(v_pre + self.v_self(v))
            g = gate(h_pre)
            h_next = self.h_out(g)
            if not self.first:
                h_next = h_next + h
            return v_next, h_next, self.skip(g)

    class ReducedSkips(nn.Module):
        def __init__(self, c=16, layers=5, k_first=7, k=5):
            super().__init__()
            self.layers = nn.ModuleList(
                [ReducedLayer(1 if i == 0 else c, c, k_first if i == 0 else k, i == 0) for i in range(layers)])
            self.head1 = nn.Conv2d(c, c, 1)
            self.head2 = nn.Conv2d(c, 1, 1)

        def forward(self, x):
            v, h, skips = x, x, 0
            for layer in self.layers:
                v, h, s = layer(v, h)
                skips = skips + s
            return self.head2(F.relu(self.head1(F.relu(skips))))

    # 2. pytorch-vqvae style prior: embeddings in, class embedding per layer ---
    class EmbedLayer(nn.Module):
        def __init__(self, dim, k, mask_a, classes):
            super().__init__()
            self.mask_a = mask_a
            self.vert = nn.Conv2d(dim, 2 * dim, (k // 2 + 1, k), padding=(k // 2, k // 2))
            self.horiz = nn.Conv2d(dim, 2 * dim, (1, k // 2 + 1), padding=(0, k // 2))
            self.v_to_h = nn.Conv2d(2 * dim, 2 * dim, 1)
            self.h_res = nn.Conv2d(dim, dim, 1)
            self.cls = nn.Embedding(classes, 2 * dim)

        def forward(self, v, h, y):
            if self.mask_a:  # mask A: no current row (vertical), no current pixel (horizontal)
                self.vert.weight.data[:, :, -1].zero_()
                self.horiz.weight.data[:, :, :, -1].zero_()
            cond = self.cls(y)[:, :, None, None]
            v_pre = self.vert(v)
            v_pre = v_pre[:, :, :v.size(-1), :]  # crop rows, with the width (square images)
            h_pre = self.horiz(h)
            h_pre = h_pre[:, :, :, :h.size(-2)]
            v_next = gate(v_pre + cond)
            g = gate(h_pre + self.v_to_h(v_pre) + cond)
            h_next = self.h_res(g)
            if not self.mask_a:
                h_next = h_next + h
            return v_next, h_next

    class EmbedClasses(nn.Module):
        def __init__(self, k_levels=4, dim=16, layers=5, classes=10, hidden=64):
            super().__init__()
            self.embed = nn.Embedding(k_levels, dim)
            self.layers = nn.ModuleList(
                [EmbedLayer(dim, 7 if i == 0 else 3, i == 0, classes) for i in range(layers)])
            self.out = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, k_levels, 1))

        def forward(self, x, label):
            e = self.embed(x).permute(0, 3, 1, 2)  # [N,H,W,dim] -> NCHW
            v, h = e, e
            for layer in self.layers:
                v, h = layer(v, h, label)
            return self.out(h)

    # 3. UvA tutorial-12 style: masked full kernels, dilation, ELU, 256 levels --
    class MaskedConv(nn.Module):
        def __init__(self, cin, cout, mask, dilation=1):
            super().__init__()
            kh, kw = mask.shape
            self.pad = (dilation * (kh // 2), dilation * (kw // 2))
            self.dilation = dilation
            self.conv = nn.Conv2d(cin, cout, (kh, kw), padding=self.pad, dilation=dilation)
            self.register_buffer("mask", torch.tensor(mask, dtype=torch.float32)[None, None])

        def forward(self, x):
            return F.conv2d(x, self.conv.weight * self.mask, self.conv.bias,
                            padding=self.pad, dilation=self.dilation)

    def vertical_mask(k, center):
        m = np.ones((k, k), np.float32)
        m[k // 2 + 1:] = 0
        if center:
            m[k // 2] = 0
        return m

    def horizontal_mask(k, center):
        m = np.ones((1, k), np.float32)
        m[0, k // 2 + 1:] = 0
        if center:
            m[0, k // 2] = 0
        return m

    class DilatedGated(nn.Module):
        def __init__(self, c, k, dilation):
            super().__init__()
            self.vert = MaskedConv(c, 2 * c, vertical_mask(k, False), dilation)
            self.horiz = MaskedConv(c, 2 * c, horizontal_mask(k, False), dilation)
            self.v_to_h = nn.Conv2d(2 * c, 2 * c, 1)
            self.h_1x1 = nn.Conv2d(c, c, 1)

        def forward(self, v, h):
            v_feat = self.vert(v)
            h_feat = self.horiz(h) + self.v_to_h(v_feat)  # link on the un-gated features
            return gate(v_feat), h + self.h_1x1(gate(h_feat))

    class DilatedELU(nn.Module):
        def __init__(self, c=16, k=3, dilations=(1, 2, 1, 4), levels=256):
            super().__init__()
            self.levels = levels
            self.v_first = MaskedConv(1, c, vertical_mask(k, True))
            self.h_first = MaskedConv(1, c, horizontal_mask(k, True))
            self.layers = nn.ModuleList([DilatedGated(c, k, d) for d in dilations])
            self.out = nn.Conv2d(c, levels, 1)

        def forward(self, x):
            x = x.float() / (self.levels - 1) * 2 - 1  # ints 0..255 -> [-1, 1]
            v, h = self.v_first(x), self.h_first(x)
            for layer in self.layers:
                v, h = layer(v, h)
            out = self.out(F.elu(h))
            return out.reshape(out.shape[0], self.levels, x.shape[1], x.shape[2], x.shape[3])

    # 4. plain masked PixelCNN with BatchNorm (jzbontar style) -------------------
    class MaskedConv2d(nn.Conv2d):
        def __init__(self, mask_type, *args, **kwargs):
            super().__init__(*args, **kwargs)
            _, _, kh, kw = self.weight.shape
            mask = torch.ones_like(self.weight)
            mask[:, :, kh // 2, kw // 2 + (mask_type == "B"):] = 0
            mask[:, :, kh // 2 + 1:] = 0
            self.register_buffer("mask", mask)

        def forward(self, x):
            self.weight.data *= self.mask
            return super().forward(x)

    class PlainBN(nn.Module):
        def __init__(self, c=32, layers_b=4, kb=3):
            super().__init__()
            mods = [MaskedConv2d("A", 1, c, 7, 1, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
            for _ in range(layers_b):
                mods += [MaskedConv2d("B", c, c, kb, 1, kb // 2, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
            mods += [nn.Conv2d(c, 256, 1)]
            self.net = nn.Sequential(*mods)

        def forward(self, x):
            return self.net(x)

    return {"torch_reduced_skips": ReducedSkips, "torch_embed_classes": EmbedClasses,
            "torch_dilated_elu": DilatedELU, "torch_plain_bn": PlainBN}


def torch_input(torch, name, lv):
    """Levels (uint8 numpy [N,H,W]) -> the model input tensor, as fixtures.json says."""
    t = torch.from_numpy(lv.astype(np.int64))
    if name == "torch_reduced_skips":
        return t[:, None].float()  # K=2: level/(K-1) == level
    if name == "torch_embed_classes":
        return t  # int64 [N,H,W]
    if name == "torch_dilated_elu":
        return t[:, None]  # int64 [N,1,H,W]
    if name == "torch_plain_bn":
        return t[:, None].float() / 255.0
    raise KeyError(name)


def build_torch(name, args):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(0)
    meta = FIXTURES[name]
    k = meta["k"]
    model = torch_models()[name]()
    lv, labels = load_split(args.data, "train", k)
    rng = np.random.default_rng(0)
    batch = 16
    it = batches(lv, labels, batch, rng)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3 if k <= 4 else 1e-3)

    def loss_of(xb_lv, yb):
        x = torch_input(torch, name, xb_lv)
        target = torch.from_numpy(xb_lv.astype(np.int64))
        if meta["classes"]:
            out = model(x, torch.from_numpy(yb))
        else:
            out = model(x)
        n = x.shape[0]
        if meta["output_layout"] == "bernoulli":
            return F.binary_cross_entropy_with_logits(out[:, 0], target.float(), reduction="sum") / n
        if meta["output_layout"] == "nkchw":
            return F.cross_entropy(out, target[:, None], reduction="sum") / n
        return F.cross_entropy(out, target, reduction="sum") / n

    model.train()
    t0, steps, hist = time.time(), 0, []
    while time.time() - t0 < args.seconds:
        xb, yb = next(it)
        loss = loss_of(xb, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append(loss.item())
        steps += 1
        if steps % 200 == 0:
            print(f"{name}: step {steps} {time.time() - t0:.0f}s loss(last 200) {np.mean(hist[-200:]):.2f}",
                  flush=True)
    train_s = time.time() - t0
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())

    # export
    path = os.path.join(args.out, name + ".onnx")
    ex_lv, ex_lab = load_split(args.data, "test", k, 4)
    x = torch_input(torch, name, ex_lv)
    if meta["classes"]:
        inputs, in_names = (x, torch.from_numpy(ex_lab)), ["input", "label"]
    else:
        inputs, in_names = (x,), ["input"]
    dyn = {n: {0: "batch"} for n in in_names + ["logits"]}
    torch.onnx.export(model, inputs, path, dynamo=False, opset_version=17, input_names=in_names,
                      output_names=["logits"], dynamic_axes=dyn, do_constant_folding=True)
    with torch.no_grad():
        ref = model(*inputs).numpy()
    sess = ort_nll.make_session(path)
    got = sess.run(None, {n: t.numpy() for n, t in zip(in_names, inputs)})[0]
    extra = {"framework": f"torch {torch.__version__}", "exporter": "torch.onnx.export(dynamo=False, opset 17)",
             "train_seconds": round(train_s, 1), "train_steps": steps, "batch": batch,
             "train_nll_last_200_steps": float(np.mean(hist[-200:])), "framework_parameters": n_params,
             "ort_vs_torch_max_abs": float(np.abs(got - ref).max())}
    return finish(name, path, meta, args.data, extra)


# ----------------------------------------------------------------------------
# Keras model (seed-blog style Gated PixelCNN, NHWC)


def build_keras(name, args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf2onnx

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.random.set_seed(0)
    keras = tf.keras
    layers = keras.layers
    K, C, LAYERS, HIDDEN = 2, 16, 5, 32

    def kernel_mask(mask_type, k, cin, cout):
        m = np.zeros((k, k, cin, cout), np.float32)
        c = k // 2
        if mask_type == "V":  # rows up to and including the centre row
            m[:c + 1] = 1
        else:  # A / B: the centre row's left part (B: with the centre)
            m[c, :c + (mask_type == "B")] = 1
        return m

    class MaskedConv2D(layers.Layer):
        """3x3 conv whose kernel is multiplied by a constant mask in call
        (exact=True), or used as stored (exact=False: the assign-masking
        style, where the frozen kernel is only approximately masked)."""

        def __init__(self, mask_type, filters, kernel_size=3, exact=True, **kw):
            super().__init__(**kw)
            self.mask_type, self.filters, self.kernel_size, self.exact = mask_type, filters, kernel_size, exact

        def build(self, input_shape):
            cin = int(input_shape[-1])
            k = self.kernel_size
            self.kernel = self.add_weight(name="kernel", shape=(k, k, cin, self.filters),
                                          initializer="glorot_uniform")
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
            self.mask_np = kernel_mask(self.mask_type, k, cin, self.filters)

        def call(self, x):
            kern = self.kernel * tf.constant(self.mask_np) if self.exact else self.kernel
            return tf.nn.conv2d(x, kern, strides=1, padding="SAME") + self.bias

    class Gate(layers.Layer):
        def call(self, x):
            a, b = tf.split(x, 2, axis=-1)
            return tf.tanh(a) * tf.sigmoid(b)

    def make_model(exact):
        inp = keras.Input((H, W, 1), name="input")
        v, h = inp, inp
        for i in range(LAYERS):
            first = i == 0
            # mask V (with the centre row) in every layer, as the seed blog does: the
            # down-shift before the link is what keeps the current row out
            v_pre = MaskedConv2D("V", 2 * C, exact=exact)(v)
            v_down = layers.Cropping2D(((0, 1), (0, 0)))(layers.ZeroPadding2D(((1, 0), (0, 0)))(v_pre))
            h_pre = MaskedConv2D("A" if first else "B", 2 * C, exact=exact)(h)
            h_pre = layers.Add()([h_pre, layers.Conv2D(2 * C, 1)(v_down)])
            v = Gate()(v_pre)
            h_new = layers.Conv2D(C, 1)(Gate()(h_pre))
            h = h_new if first else layers.Add()([h, h_new])
        x = layers.ReLU()(h)
        x = layers.Conv2D(HIDDEN, 1)(x)
        x = layers.ReLU()(x)
        out = layers.Conv2D(K, 1)(x)
        return keras.Model(inp, out)

    meta = FIXTURES["keras_gated_nhwc"]
    model = make_model(True)
    lv, labels = load_split(args.data, "train", K)
    it = batches(lv, labels, 16, np.random.default_rng(0))
    opt = keras.optimizers.Adam(2e-3)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            loss = tf.reduce_sum(nll) / tf.cast(tf.shape(x)[0], tf.float32)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    t0, steps, hist = time.time(), 0, []
    while time.time() - t0 < args.seconds:
        xb, _ = next(it)
        x = (xb.astype(np.float32) / (K - 1))[..., None]
        hist.append(float(step(tf.constant(x), tf.constant(xb.astype(np.int32)))))
        steps += 1
        if steps % 200 == 0:
            print(f"{name}: step {steps} {time.time() - t0:.0f}s loss(last 200) {np.mean(hist[-200:]):.2f}",
                  flush=True)
    train_s = time.time() - t0
    n_params = int(sum(np.prod(w.shape) for w in model.weights))

    ex_lv, _ = load_split(args.data, "test", K, 4)
    ex = (ex_lv.astype(np.float32) / (K - 1))[..., None]
    spec = (tf.TensorSpec((None, H, W, 1), tf.float32, name="input"),)
    results = []
    for variant, exact in (("keras_gated_nhwc", True), ("keras_gated_nhwc_approx", False)):
        if exact:
            m = model
        else:
            # assign-masking style: the stored kernels are the masked kernels plus
            # tiny leftovers (~1e-7) at the masked taps, and call() uses them as stored
            m = make_model(False)
            m.set_weights(model.get_weights())
            noise = np.random.default_rng(5)
            for lyr in m.layers:
                if isinstance(lyr, MaskedConv2D):
                    kv = lyr.kernel.numpy() * lyr.mask_np
                    tiny = noise.normal(0, 1e-7, kv.shape).astype(np.float32)
                    lyr.kernel.assign(np.where(lyr.mask_np == 0, tiny, kv))

        @tf.function(input_signature=spec)
        def serve(x, m=m):
            return m(x, training=False)

        path = os.path.join(args.out, variant + ".onnx")
        tf2onnx.convert.from_function(serve, input_signature=spec, opset=17, output_path=path)
        ref = m(tf.constant(ex), training=False).numpy()
        sess = ort_nll.make_session(path)
        got = sess.run(None, {sess.get_inputs()[0].name: ex})[0]
        extra = {"framework": f"tensorflow {tf.__version__} / keras {keras.__version__}",
                 "exporter": f"tf2onnx {tf2onnx.__version__} from_function, opset 17",
                 "train_seconds": round(train_s, 1), "train_steps": steps, "batch": 16,
                 "train_nll_last_200_steps": float(np.mean(hist[-200:])), "framework_parameters": n_params,
                 "ort_vs_keras_max_abs": float(np.abs(got - ref).max())}
        results.append(finish(variant, path, FIXTURES[variant], args.data, extra,
                              tol=1e-6 if exact else 1e-2))
    return results


# ----------------------------------------------------------------------------


def write_index(out_dir):
    rows = []
    for name, meta in FIXTURES.items():
        rows.append({"file": name + ".onnx", "input_name": meta["input_name"], "input_kind": meta["input_kind"],
                     "label_input": meta["label_input"], "k": meta["k"], "classes": meta["classes"],
                     "output_layout": meta["output_layout"], "height": H, "width": W})
    with open(os.path.join(out_dir, "fixtures.json"), "w") as f:
        json.dump(rows, f, indent=2)
        f.write("\n")


def write_levels(data_dir, out_dir, count=1000):
    os.makedirs(out_dir, exist_ok=True)
    for k in (2, 4, 256):
        lv, labels = load_split(data_dir, "test", k, count)
        ort_nll.write_idx(os.path.join(out_dir, f"t10k-levels-k{k}-{count}.idx"), lv)
    ort_nll.write_idx(os.path.join(out_dir, f"t10k-labels-{count}.idx"), labels.astype(np.uint8))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=[n for n, m in FIXTURES.items() if "built_by" not in m])
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "foreign"))
    ap.add_argument("--data", default=os.path.join(REPO, "shared", "data", "mnist"))
    ap.add_argument("--check-only", action="store_true")
    ap.add_argument("--write-index", action="store_true")
    ap.add_argument("--write-levels", metavar="DIR")
    args = ap.parse_args()
    if not os.path.isdir(args.data):  # shared/ may sit beside the checkout
        alt = os.path.join(REPO, "..", "shared", "data", "mnist")
        if os.path.isdir(alt):
            args.data = os.path.abspath(alt)
    os.makedirs(args.out, exist_ok=True)
    if args.write_levels:
        write_levels(args.data, args.write_levels)
        return
    write_index(args.out)
    if args.write_index:
        return
    names = [args.only] if args.only else [n for n, m in FIXTURES.items() if "built_by" not in m]
    for name in names:
        fw = FIXTURES[name]["framework"]
        if args.check_only:
            for n, m in FIXTURES.items():
                if n == name or m.get("built_by") == name:
                    p = os.path.join(args.out, n + ".onnx")
                    finish(n, p, m, args.data, {}, tol=1e-2 if m.get("built_by") else 1e-6)
            continue
        try:
            __import__("torch" if fw == "torch" else "tensorflow")
        except ImportError:
            if args.only:
                raise
            print(f"skipping {name}: {fw} is not installed here", flush=True)
            continue
        (build_torch if fw == "torch" else build_keras)(name, args)


if __name__ == "__main__":
    main()
