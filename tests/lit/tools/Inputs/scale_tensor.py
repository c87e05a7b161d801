"""Multiplies one float32 tensor of a model directory's model.safetensors by
a factor, in place: weights whose values overflow float32.

usage: scale_tensor.py MODEL_DIR TENSOR FACTOR
"""
import array
import json
import os
import struct
import sys

model_dir, name, factor = sys.argv[1], sys.argv[2], float(sys.argv[3])
path = os.path.join(model_dir, "model.safetensors")
with open(path, "r+b") as f:
    data = bytearray(f.read())
    n = struct.unpack("<Q", data[:8])[0]
    entry = json.loads(data[8:8 + n])[name]
    assert entry["dtype"] == "F32", entry["dtype"]
    begin, end = (8 + n + o for o in entry["data_offsets"])
    values = array.array("f", bytes(data[begin:end]))
    data[begin:end] = array.array("f", (v * factor for v in values)).tobytes()
    f.seek(0)
    f.write(data)
