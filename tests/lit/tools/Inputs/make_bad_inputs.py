"""Writes a tiny valid Llama checkpoint and corrupted variants of it.

Usage: make_bad_inputs.py OUT_DIR. Pure Python (no numpy/torch) so the
bad-input suite runs on any machine. Each variant breaks one thing; the lit
test next to this folder checks the error that names it.
"""
import json
import os
import random
import shutil
import struct
import sys

HIDDEN, FFN, LAYERS, HEADS, KV_HEADS, VOCAB = 16, 32, 2, 4, 2, 32
HEAD_DIM = HIDDEN // HEADS


def tensors():
    rng = random.Random(0)
    def t(*shape):
        n = 1
        for d in shape:
            n *= d
        return shape, [rng.gauss(0, 0.2) for _ in range(n)]
    out = {"model.embed_tokens.weight": t(VOCAB, HIDDEN), "model.norm.weight": t(HIDDEN),
           "lm_head.weight": t(VOCAB, HIDDEN)}
    for l in range(LAYERS):
        p = f"model.layers.{l}."
        out[p + "input_layernorm.weight"] = t(HIDDEN)
        out[p + "post_attention_layernorm.weight"] = t(HIDDEN)
        out[p + "self_attn.q_proj.weight"] = t(HEADS * HEAD_DIM, HIDDEN)
        out[p + "self_attn.k_proj.weight"] = t(KV_HEADS * HEAD_DIM, HIDDEN)
        out[p + "self_attn.v_proj.weight"] = t(KV_HEADS * HEAD_DIM, HIDDEN)
        out[p + "self_attn.o_proj.weight"] = t(HIDDEN, HEADS * HEAD_DIM)
        out[p + "mlp.gate_proj.weight"] = t(FFN, HIDDEN)
        out[p + "mlp.up_proj.weight"] = t(FFN, HIDDEN)
        out[p + "mlp.down_proj.weight"] = t(HIDDEN, FFN)
    return out


def safetensors_bytes(ts, edit_header=None):
    header, data = {}, b""
    for name, (shape, values) in ts.items():
        blob = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": list(shape),
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    if edit_header:
        edit_header(header)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
          "hidden_size": HIDDEN, "intermediate_size": FFN, "num_hidden_layers": LAYERS,
          "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
          "vocab_size": VOCAB, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
          "max_position_embeddings": 64, "tie_word_embeddings": False,
          "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu"}


def model_dir(root, name, config=CONFIG, weights=None, config_text=None):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(config_text if config_text is not None else json.dumps(config))
    if weights is not None:
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(weights)
    return d


def with_config(**changes):
    c = dict(CONFIG)
    for k, v in changes.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def main(root):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    ts = tensors()
    good = safetensors_bytes(ts)
    model_dir(root, "good", weights=good)

    # safetensors container
    model_dir(root, "truncated", weights=good[:-100])
    model_dir(root, "tiny", weights=good[:3])
    model_dir(root, "header-past-end", weights=struct.pack("<Q", 1 << 40) + good[8:])
    model_dir(root, "header-not-json", weights=struct.pack("<Q", 5) + b"{oops" + good[8:])
    def overlap(h):
        h["model.norm.weight"]["data_offsets"] = list(h["model.embed_tokens.weight"]["data_offsets"][:1])
        h["model.norm.weight"]["data_offsets"].append(h["model.norm.weight"]["data_offsets"][0] + HIDDEN * 4)
    model_dir(root, "overlap", weights=safetensors_bytes(ts, overlap))
    # json.dumps cannot write a key twice; a header written by hand can.
    n = struct.unpack("<Q", good[:8])[0]
    header = good[8:8 + n].replace(b', "model.norm.weight"',
                                   b', "model.norm.weight": {}, "model.norm.weight"', 1)
    model_dir(root, "duplicate-key", weights=struct.pack("<Q", len(header)) + header + good[8 + n:])
    def unknown_dtype(h):
        h["model.norm.weight"]["dtype"] = "Q4_K"
    model_dir(root, "unknown-dtype", weights=safetensors_bytes(ts, unknown_dtype))
    def int_dtype(h):
        h["model.norm.weight"]["dtype"] = "I64"
        h["model.norm.weight"]["shape"] = [HIDDEN // 2]
    model_dir(root, "unsupported-dtype", weights=safetensors_bytes(ts, int_dtype))
    def lying_shape(h):
        h["model.norm.weight"]["shape"] = [HIDDEN * 2]
    model_dir(root, "lying-shape", weights=safetensors_bytes(ts, lying_shape))

    # tensors vs config
    missing = dict(ts)
    del missing["model.layers.1.self_attn.k_proj.weight"]
    model_dir(root, "missing-tensor", weights=safetensors_bytes(missing))
    misshaped = dict(ts)
    misshaped["model.layers.0.mlp.up_proj.weight"] = (FFN + 1, HIDDEN), [0.0] * ((FFN + 1) * HIDDEN)
    model_dir(root, "misshaped-tensor", weights=safetensors_bytes(misshaped))

    # config.json
    model_dir(root, "config-not-json", config_text="{\"hidden_size\": 16,", weights=good)
    model_dir(root, "config-missing-field", config=with_config(hidden_size=None), weights=good)
    model_dir(root, "config-negative", config=with_config(num_hidden_layers=-2), weights=good)
    model_dir(root, "config-unknown-arch",
              config=with_config(architectures=["MistralForCausalLM"]), weights=good)
    model_dir(root, "config-yarn", config=with_config(
        rope_scaling={"rope_type": "yarn", "factor": 4.0}), weights=good)
    # transformers >= 5 writes rope_parameters and no rope_theta / rope_scaling.
    llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    model_dir(root, "rope-parameters", config=with_config(
        rope_theta=None, rope_parameters=dict(llama3, rope_theta=500000.0)), weights=good)
    model_dir(root, "rope-parameters-default", config=with_config(
        rope_theta=None, rope_parameters={"rope_type": "default", "rope_theta": 250000.0}),
        weights=good)
    model_dir(root, "config-rope-parameters-yarn", config=with_config(
        rope_theta=None, rope_parameters={"rope_type": "yarn", "factor": 4.0,
                                          "rope_theta": 10000.0}), weights=good)
    model_dir(root, "config-rope-parameters-theta", config=with_config(
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0}), weights=good)
    model_dir(root, "config-rope-parameters-scaling", config=with_config(
        rope_scaling=llama3, rope_parameters={"rope_type": "default"}), weights=good)
    # transformers 5 reads rope_scaling as rope_parameters, rope_theta too.
    model_dir(root, "config-rope-scaling-theta", config=with_config(
        rope_theta=None, rope_scaling=dict(llama3, rope_theta=500000.0)), weights=good)
    model_dir(root, "rope-scaling-theta-agrees", config=with_config(
        rope_theta=500000.0, rope_scaling=dict(llama3, rope_theta=500000.0)), weights=good)
    model_dir(root, "config-partial-rotary", config=with_config(partial_rotary_factor=0.5),
              weights=good)
    model_dir(root, "config-kv-heads", config=with_config(num_key_value_heads=3), weights=good)
    model_dir(root, "config-gelu", config=with_config(hidden_act="gelu"), weights=good)
    model_dir(root, "config-arch-string", config=with_config(architectures="LlamaForCausalLM"),
              weights=good)
    model_dir(root, "config-bos-range", config=with_config(bos_token_id=VOCAB + 9000), weights=good)
    model_dir(root, "config-eos-range", config=with_config(eos_token_id=[2, VOCAB]), weights=good)
    # generation_config.json: instruct checkpoints list end-of-turn tokens
    # there only (generation-config.test generates with these).
    for name, text in (("generation-config", '{"eos_token_id": [2, 8]}'),
                       ("generation-config-int", '{"bos_token_id": 1, "eos_token_id": 8}'),
                       ("generation-config-null", '{"eos_token_id": null}'),
                       ("config-generation-eos-range", '{"eos_token_id": [2, %d]}' % VOCAB),
                       ("config-generation-eos-string", '{"eos_token_id": "</s>"}'),
                       ("config-generation-not-json", '{"eos_token_id": [2,'),
                       # Sampling settings, as Qwen's and Llama's instruct
                       # checkpoints write them.
                       ("generation-config-greedy", '{"do_sample": false, "temperature": 0.6}'),
                       ("generation-config-top-k", '{"do_sample": true, "temperature": 0.7, '
                                                   '"top_k": 1, "top_p": 0.8, '
                                                   '"repetition_penalty": 1.05}'),
                       ("generation-config-max-new", '{"max_new_tokens": 3}'),
                       ("config-generation-top-p-range", '{"top_p": 1.5}'),
                       ("config-generation-max-new-zero", '{"max_new_tokens": 0}'),
                       ("config-generation-top-k-float", '{"top_k": 2.5}'),
                       ("config-generation-temperature-string", '{"temperature": "hot"}')):
        d = model_dir(root, name, weights=good)
        with open(os.path.join(d, "generation_config.json"), "w") as f:
            f.write(text)
    model_dir(root, "no-weights")
    d = model_dir(root, "missing-shard")
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors"}}, f)
    d = model_dir(root, "misindexed-shard")
    with open(os.path.join(d, "model-00001-of-00001.safetensors"), "wb") as f:
        f.write(safetensors_bytes(tensors()))
    listed = dict.fromkeys(list(tensors()) + ["model.layers.2.mlp.up_proj.weight"],
                           "model-00001-of-00001.safetensors")
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": listed}, f)
    d = model_dir(root, "unnamed-shard")
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": {"model.norm.weight": ""}}, f)
    os.makedirs(os.path.join(root, "not-a-model"))

    # llama2.c
    dim, hidden, layers, heads, kv, vocab, seq = 16, 32, 1, 4, 2, 32, 8
    hs = dim // heads
    floats = (vocab * dim + layers * (dim + dim * dim + 2 * kv * hs * dim + dim * dim + dim
                                      + 3 * hidden * dim) + dim + seq * hs)
    header = struct.pack("<7i", dim, hidden, layers, heads, kv, vocab, seq)
    body = struct.pack(f"<{floats}f", *([0.01] * floats))
    with open(os.path.join(root, "good.bin"), "wb") as f:
        f.write(header + body)
    with open(os.path.join(root, "truncated.bin"), "wb") as f:
        f.write(header + body[:-64])
    with open(os.path.join(root, "bad-header.bin"), "wb") as f:
        f.write(struct.pack("<7i", dim, hidden, layers, 0, kv, vocab, seq) + body)
    with open(os.path.join(root, "bad-heads.bin"), "wb") as f:
        f.write(struct.pack("<7i", dim, hidden, layers, 3, kv, vocab, seq) + body)
    with open(os.path.join(root, "short.bin"), "wb") as f:
        f.write(header[:10])
    with open(os.path.join(root, "weights.gguf"), "wb") as f:
        f.write(b"GGUF")


if __name__ == "__main__":
    main(sys.argv[1])
