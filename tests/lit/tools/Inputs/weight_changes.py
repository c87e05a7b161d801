"""weight_changes.py A B: how far two distilled models' weights are apart,
per group: the attention's (self_attn.*) and the rest. Prints
"attention SAME|MOVED rest SAME|MOVED", SAME when every tensor of the group
is within 1e-3 of the other's largest magnitude: a few steps of training at
lr 1e-3 move weights by about 1e-2 of it, while the same training through
another graph (the copies of frozen weights in place of the weights) agrees
to about 2e-4. Reads model.safetensors (F32) with the standard library
only."""
import json
import os
import struct
import sys


def tensors(model):
    with open(os.path.join(model, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            sys.exit(f"{model}: {name} is {info['dtype']}, not F32")
        begin, end = info["data_offsets"]
        out[name] = struct.unpack(f"<{(end - begin) // 4}f", data[begin:end])
    return out


a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
if a.keys() != b.keys():
    sys.exit("the models have different tensors")
moved = {"attention": False, "rest": False}
for name in a:
    scale = max(max(abs(x) for x in b[name]), 1e-30)
    diff = max(abs(x - y) for x, y in zip(a[name], b[name]))
    group = "attention" if ".self_attn." in name else "rest"
    moved[group] |= diff > 1e-3 * scale
print(" ".join(f"{g} {'MOVED' if m else 'SAME'}" for g, m in moved.items()))
