#!/usr/bin/env python3
"""Mean NLL (nats per image) of a foreign PixelCNN ONNX model, with onnxruntime.

The images must already hold LEVELS: one byte per pixel with values 0..K-1,
in IDX format (optionally gzipped), e.g. written by another tool.

    ort_nll.py MODEL.onnx --images LEVELS.idx --count N \
        --input unit|signed|levels|index --levels K [--labels LABELS.idx] [--bernoulli]

--input says how a level becomes the model's input value:
    unit    level / (K-1)           (float)
    signed  2 * level / (K-1) - 1   (float)
    levels  level                   (float)
    index   level                   (integer tensor: int64/int32 as the model declares)
The input layout (NCHW [N,1,H,W], NHWC [N,H,W,1] or [N,H,W]) is read from the
model's declared input shape. The output layout is recognised from the shape of
the result: [N,K,H,W], [N,K,1,H,W], [N,H,W,K], or with --bernoulli one logit
per pixel ([N,1,H,W] or [N,H,W,1]) whose sigmoid is P(level = 1).

Prints JSON {"nats_per_image", "images", "ms_per_full_pass"}; ms_per_full_pass
is the mean wall time of one batch-1 session.run (one thread, full pass).
Only numpy and onnxruntime are needed.
"""
import argparse
import gzip
import json
import sys
import time

import numpy as np

INPUT_KINDS = ("unit", "signed", "levels", "index")


def read_idx(path):
    """Reads an IDX file (ubyte data only), gzipped or not, into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file")
    if data[2] != 0x08:
        raise ValueError(f"{path}: IDX type 0x{data[2]:02x} is not unsigned byte")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    off = 4 + 4 * ndim
    n = int(np.prod(dims)) if dims else 0
    if len(data) - off < n:
        raise ValueError(f"{path}: truncated ({len(data) - off} < {n} bytes)")
    return np.frombuffer(data, dtype=np.uint8, count=n, offset=off).reshape(dims)


def write_idx(path, arr):
    """Writes a uint8 array as an IDX file (gzipped when path ends in .gz)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + arr.tobytes())


def _elem_type(ort_type):
    return {
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
        "tensor(float16)": np.float16,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(uint8)": np.uint8,
    }[ort_type]


def find_inputs(session):
    """Returns (image_input, label_input or None) NodeArgs of the session."""
    image, label = None, None
    for inp in session.get_inputs():
        if len(inp.shape) >= 3:
            image = inp
        else:
            label = inp
    if image is None:
        raise ValueError("model has no image input of rank >= 3")
    return image, label


def levels_to_input(levels, image_arg, kind, k):
    """levels: uint8/int array [N,H,W] -> array shaped/typed for the model input."""
    n, h, w = levels.shape
    dtype = _elem_type(image_arg.type)
    lv = levels.astype(np.float64)
    if kind == "unit":
        x = lv / (k - 1)
    elif kind == "signed":
        x = 2.0 * lv / (k - 1) - 1.0
    elif kind in ("levels", "index"):
        x = lv
    else:
        raise ValueError(f"unknown input kind {kind}")
    x = x.astype(dtype)
    shape = image_arg.shape
    if len(shape) == 3:
        return x
    if len(shape) == 4:
        # NHWC when the last dim is 1 and dim 1 is the height (not a channel count of 1).
        if shape[3] == 1 and shape[1] != 1:
            return x[:, :, :, None]
        return x[:, None, :, :]
    if len(shape) == 5:  # [N,1,1,H,W]: not produced by our fixtures, kept for completeness
        return x[:, None, None, :, :]
    raise ValueError(f"unsupported input shape {shape}")


def output_to_logits(out, k, h, w, bernoulli=False):
    """Normalises a model output to [N,H,W,K] logits (K=1 for a Bernoulli logit)."""
    n = out.shape[0]
    if bernoulli:
        if out.size != n * h * w:
            raise ValueError(f"--bernoulli needs one logit per pixel, got shape {out.shape}")
        return out.reshape(n, h, w, 1)  # [N,1,H,W], [N,H,W,1] and [N,H,W] alike
    if out.ndim == 5 and out.shape[1] == k and out.shape[2] == 1 and out.shape[3:] == (h, w):
        return out[:, :, 0].transpose(0, 2, 3, 1)
    if out.ndim == 4 and out.shape[1] == k and out.shape[2:] == (h, w):
        return out.transpose(0, 2, 3, 1)
    if out.ndim == 4 and out.shape[1:3] == (h, w) and out.shape[3] == k:
        return out
    raise ValueError(f"cannot read output shape {out.shape} as K={k} logits for {h}x{w}")


def nll_per_image(logits, levels, bernoulli=False):
    """logits [N,H,W,K] (or K=1 Bernoulli), levels [N,H,W] -> NLL in nats, [N]."""
    logits = logits.astype(np.float64)
    if bernoulli:
        l = logits[..., 0]
        x = levels.astype(np.float64)
        # -log p = softplus(l) - x*l, computed stably
        nll = np.maximum(l, 0) + np.log1p(np.exp(-np.abs(l))) - x * l
    else:
        m = logits.max(axis=-1, keepdims=True)
        lse = (m + np.log(np.exp(logits - m).sum(axis=-1, keepdims=True)))[..., 0]
        picked = np.take_along_axis(logits, levels[..., None].astype(np.int64), axis=-1)[..., 0]
        nll = lse - picked
    return nll.reshape(nll.shape[0], -1).sum(axis=1)


def make_session(model_path, threads=1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])


def evaluate(model_path, levels, k, kind, labels=None, bernoulli=False, batch=1, time_runs=20):
    sess = make_session(model_path)
    image_arg, label_arg = find_inputs(sess)
    if label_arg is not None and labels is None:
        raise ValueError(f"model has a label input '{label_arg.name}': pass --labels")
    n, h, w = levels.shape
    if levels.max() >= k:
        raise ValueError(f"image values go up to {levels.max()}, not levels 0..{k - 1}")
    out_name = sess.get_outputs()[0].name

    def feeds(sl):
        f = {image_arg.name: levels_to_input(levels[sl], image_arg, kind, k)}
        if label_arg is not None:
            f[label_arg.name] = labels[sl].astype(_elem_type(label_arg.type))
        return f

    total = 0.0
    times = []
    # warm-up
    sess.run([out_name], feeds(slice(0, 1)))
    for s in range(0, n, batch):
        sl = slice(s, min(n, s + batch))
        fd = feeds(sl)
        t0 = time.perf_counter()
        out = sess.run([out_name], fd)[0]
        dt = time.perf_counter() - t0
        if batch == 1:
            times.append(dt)
        total += nll_per_image(output_to_logits(out, k, h, w, bernoulli), levels[sl], bernoulli).sum()
    if not times:
        for i in range(min(n, time_runs)):
            fd = feeds(slice(i, i + 1))
            t0 = time.perf_counter()
            sess.run([out_name], fd)
            times.append(time.perf_counter() - t0)
    return {
        "nats_per_image": float(total / n),
        "images": int(n),
        "ms_per_full_pass": float(1000.0 * np.mean(times)),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--images", required=True, help="IDX (or .gz) file of levels 0..K-1")
    ap.add_argument("--count", type=int, default=None, help="first N images (default: all)")
    ap.add_argument("--input", required=True, choices=INPUT_KINDS)
    ap.add_argument("--levels", type=int, required=True, help="K")
    ap.add_argument("--labels", default=None, help="IDX labels for a class-conditional model")
    ap.add_argument("--bernoulli", action="store_true", help="output is one Bernoulli logit per pixel")
    ap.add_argument("--batch", type=int, default=1,
                    help="batch size of the NLL passes (default 1; timing always uses batch 1)")
    a = ap.parse_args(argv)
    imgs = read_idx(a.images)
    if imgs.ndim != 3:
        raise SystemExit(f"{a.images}: expected [N,H,W] images, got shape {imgs.shape}")
    n = imgs.shape[0] if a.count is None else min(a.count, imgs.shape[0])
    labels = read_idx(a.labels)[:n] if a.labels else None
    if a.bernoulli and a.levels != 2:
        raise SystemExit("--bernoulli needs --levels 2")
    try:
        res = evaluate(a.model, np.ascontiguousarray(imgs[:n]), a.levels, a.input, labels,
                       a.bernoulli, batch=max(1, a.batch))
    except ValueError as e:
        raise SystemExit(f"ort_nll: {e}")
    print(json.dumps(res))


if __name__ == "__main__":
    sys.exit(main())
