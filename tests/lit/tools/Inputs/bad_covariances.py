"""Writes damaged copies of an activations file (calibrate-activations'
per-layer input_covariance, float32) into OUT_DIR: one entry NaN, one pair
asymmetric, the first layer negated, zeroed, flattened to one dimension, and
a covariance for a layer the model does not have.

usage: bad_covariances.py ACT.safetensors OUT_DIR
"""
import array
import json
import os
import struct
import sys


def read(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    tensors = {}
    for name, entry in header.items():
        begin, end = (8 + n + o for o in entry["data_offsets"])
        tensors[name] = (entry["shape"], array.array("f", data[begin:end]))
    return tensors


def write(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, (shape, values) in tensors.items():
        blob = values.tobytes()
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


source, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
first = "model.layers.0.self_attn.input_covariance"
for variant in ("nan", "asymmetric", "negated", "zero", "flat", "extra-layer"):
    tensors = read(source)
    shape, values = tensors[first]
    hidden = shape[0]
    if variant == "nan":
        values[1] = float("nan")
    elif variant == "asymmetric":
        values[1] += 1.0
    elif variant == "negated":
        tensors[first] = shape, array.array("f", (-v for v in values))
    elif variant == "zero":
        tensors[first] = shape, array.array("f", [0.0] * len(values))
    elif variant == "flat":
        tensors[first] = [hidden * hidden], values
    else:
        tensors["model.layers.%d.self_attn.input_covariance" % len(tensors)] = shape, values
    write(os.path.join(out, variant + ".safetensors"), tensors)
