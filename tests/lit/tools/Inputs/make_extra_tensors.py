"""Writes the tiny Llama of make_bad_inputs.py with tensors its config.json
does not describe, next to extras real Hugging Face checkpoints carry.

Usage: make_extra_tensors.py OUT_DIR. Pure Python, like make_bad_inputs.py.
Each variant is one directory; import-extra-tensors.test checks which load.
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_bad_inputs import (HEAD_DIM, HEADS, KV_HEADS, LAYERS, model_dir,  # noqa: E402
                             safetensors_bytes, tensors, with_config)


def main(root):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    ts = tensors()
    model_dir(root, "good", weights=safetensors_bytes(ts))

    # Mismatches: the config's model would run and silently compute garbage.
    model_dir(root, "fewer-layers", config=with_config(num_hidden_layers=LAYERS - 1),
              weights=safetensors_bytes(ts))
    bias = dict(ts)
    bias["model.layers.0.self_attn.q_proj.bias"] = (HEADS * HEAD_DIM,), [0.5] * (HEADS * HEAD_DIM)
    model_dir(root, "stray-bias", weights=safetensors_bytes(bias))
    norm = dict(ts)
    norm["model.layers.1.self_attn.q_norm.weight"] = (HEAD_DIM,), [1.0] * HEAD_DIM
    model_dir(root, "stray-qk-norm", weights=safetensors_bytes(norm))
    # lm_head.weight is not the embedding, but the config ties them.
    model_dir(root, "tied-but-different", config=with_config(tie_word_embeddings=True),
              weights=safetensors_bytes(ts))
    # A tensor in two shards: only the first would be read.
    d = model_dir(root, "twice-in-shards")
    first = {k: v for i, (k, v) in enumerate(ts.items()) if i % 2 == 0}
    second = {k: v for i, (k, v) in enumerate(ts.items()) if i % 2 == 1}
    first["model.norm.weight"] = second["model.norm.weight"] = ts["model.norm.weight"]
    shard_map = {}
    for name, part in (("model-00001-of-00002.safetensors", first),
                       ("model-00002-of-00002.safetensors", second)):
        with open(os.path.join(d, name), "wb") as f:
            f.write(safetensors_bytes(part))
        shard_map.update({k: name for k in part})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": shard_map}, f)

    # model.safetensors beside shards holding other weights: transformers
    # loads model.safetensors.
    d = model_dir(root, "single-and-shards", weights=safetensors_bytes(ts))
    other = {k: (shape, [2 * x for x in values]) for k, (shape, values) in ts.items()}
    names = list(other)
    shard_map = {}
    for i, name in enumerate(("model-00001-of-00002.safetensors",
                              "model-00002-of-00002.safetensors")):
        part = {k: other[k] for k in names[i::2]}
        with open(os.path.join(d, name), "wb") as f:
            f.write(safetensors_bytes(part))
        shard_map.update({k: name for k in part})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": shard_map}, f)

    # Harmless: what transformers itself drops on load.
    inv = dict(ts)
    for l in range(LAYERS):
        inv[f"model.layers.{l}.self_attn.rotary_emb.inv_freq"] = \
            (HEAD_DIM // 2,), [10000.0 ** (-2 * i / HEAD_DIM) for i in range(HEAD_DIM // 2)]
    model_dir(root, "inv-freq", weights=safetensors_bytes(inv))
    tied = dict(ts)
    tied["lm_head.weight"] = ts["model.embed_tokens.weight"]
    model_dir(root, "tied-copy", config=with_config(tie_word_embeddings=True),
              weights=safetensors_bytes(tied))
    untied = dict(tied)
    del untied["lm_head.weight"]
    model_dir(root, "tied", config=with_config(tie_word_embeddings=True),
              weights=safetensors_bytes(untied))

    # A Qwen2: its q/k/v biases are read (and an MLA edit drops them).
    qwen2 = dict(ts)
    for l in range(LAYERS):
        for proj, rows in (("q", HEADS * HEAD_DIM), ("k", KV_HEADS * HEAD_DIM),
                           ("v", KV_HEADS * HEAD_DIM)):
            qwen2[f"model.layers.{l}.self_attn.{proj}_proj.bias"] = (rows,), [0.1] * rows
    model_dir(root, "qwen2", config=with_config(architectures=["Qwen2ForCausalLM"],
                                                model_type="qwen2"),
              weights=safetensors_bytes(qwen2))

    # A Qwen3: per-head q/k RMSNorms (an MLA edit cannot reproduce them).
    qwen3 = dict(ts)
    for l in range(LAYERS):
        for proj in ("q", "k"):
            qwen3[f"model.layers.{l}.self_attn.{proj}_norm.weight"] = (HEAD_DIM,), [1.0] * HEAD_DIM
    model_dir(root, "qwen3", config=with_config(architectures=["Qwen3ForCausalLM"],
                                                model_type="qwen3", head_dim=HEAD_DIM),
              weights=safetensors_bytes(qwen3))


if __name__ == "__main__":
    main(sys.argv[1])
