"""Writes tiny random checkpoints for the parity tests, deterministic by seed.

HF models: config.json + safetensors (written here with json/struct/numpy,
no safetensors package). llama2.c models: legacy version-0 .bin files.

    python3 make_models.py OUT_DIR      # prints "name path" per model
"""
import json
import os
import struct
import sys

import numpy as np
import torch

# The parity driver uses these too, so the stop tokens chosen below are hit.
FORWARD_TOKENS = [1, 5, 9, 23, 42, 7, 77, 3, 64]
GEN_PROMPT = [1, 5, 9]
GEN_MAX_TOKENS = 12

LLAMA = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
             rms_norm_eps=1e-5, rope_theta=10000.0, bos_token_id=1, eos_token_id=2)
QWEN = dict(hidden_act="silu", rms_norm_eps=1e-6, rope_theta=1000000.0,
            bos_token_id=1, eos_token_id=2, use_sliding_window=False)

# name -> (seed, config, storage dtype, shards, stop-token choice)
# stop "never": eos is an id greedy decoding does not reach; "mid": eos is the
# first new token greedy decoding produces at step >= 3, so generation stops
# early; "first": eos is the very first greedy token, so no ids come out.
HF_MODELS = {
    "llama": (11, dict(LLAMA, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, vocab_size=96,
                       tie_word_embeddings=False, max_position_embeddings=128),
              "float32", 1, "never"),
    # original_max_position_embeddings 32 with head_dim 16: the wavelengths
    # (6.3, 19.9, 62.8, ...) fall in all three llama3 bands (kept, smoothed, /factor).
    "llama3": (17, dict(LLAMA, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=1, vocab_size=128,
                        tie_word_embeddings=False, max_position_embeddings=256,
                        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                          high_freq_factor=4.0,
                                          original_max_position_embeddings=32),
                        bos_token_id=1, eos_token_id=[2, 3]),
               "bfloat16", 2, "never"),
    # transformers >= 5 writes RoPE settings as rope_parameters, with no
    # top-level rope_theta. original_max_position_embeddings 64 with theta
    # 500000 and head_dim 16 puts the wavelengths (6.3, 32.5, 168, ...) in
    # all three llama3 bands.
    "llama3_v5": (18, dict({k: v for k, v in LLAMA.items() if k != "rope_theta"},
                           hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, vocab_size=100,
                           tie_word_embeddings=False, max_position_embeddings=128,
                           rope_parameters=dict(rope_type="llama3", rope_theta=500000.0,
                                                factor=8.0, low_freq_factor=1.0,
                                                high_freq_factor=4.0,
                                                original_max_position_embeddings=64)),
                  "float32", 1, "mid"),
    "qwen2": (13, dict(QWEN, architectures=["Qwen2ForCausalLM"], model_type="qwen2",
                       hidden_size=64, intermediate_size=172, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, vocab_size=112,
                       tie_word_embeddings=True, max_position_embeddings=128),
              "float16", 1, "mid"),
    "qwen3": (14, dict(QWEN, architectures=["Qwen3ForCausalLM"], model_type="qwen3",
                       hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                       vocab_size=120, tie_word_embeddings=True, attention_bias=False,
                       max_position_embeddings=128),
              "float32", 1, "never"),
    "llama_mha": (15, dict(LLAMA, hidden_size=64, intermediate_size=144, num_hidden_layers=2,
                           num_attention_heads=8, num_key_value_heads=8, vocab_size=100,
                           tie_word_embeddings=False, max_position_embeddings=64),
                  "float32", 1, "first"),
}

# name -> (seed, dim, hidden, layers, heads, kv_heads, vocab, seq_len, shared classifier)
LLAMA2C_MODELS = {
    "llama2c_gqa": (21, 64, 172, 2, 8, 4, 96, 64, True),
    "llama2c_mha_unshared": (22, 64, 128, 2, 4, 4, 104, 32, False),
}


def random_weights(seed, dim, inter, layers, heads, kv_heads, head_dim, vocab, tied,
                   bias=False, qk_norm=False):
    """HF-named float32 arrays.

    The attention/MLP outputs are scaled up against the embeddings: otherwise
    the current token's embedding dominates the residual stream and tied
    models greedily repeat their input token, which would test little.
    """
    rng = np.random.default_rng(seed)

    def normal(scale, *shape):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def norm_weight(n):
        return (1.0 + rng.standard_normal(n) * 0.1).astype(np.float32)

    w = {"model.embed_tokens.weight": normal(0.5, vocab, dim)}
    for l in range(layers):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = norm_weight(dim)
        w[p + "self_attn.q_proj.weight"] = normal(0.2, heads * head_dim, dim)
        w[p + "self_attn.k_proj.weight"] = normal(0.2, kv_heads * head_dim, dim)
        w[p + "self_attn.v_proj.weight"] = normal(0.2, kv_heads * head_dim, dim)
        if bias:
            for proj, n in (("q", heads), ("k", kv_heads), ("v", kv_heads)):
                w[p + f"self_attn.{proj}_proj.bias"] = normal(0.2, n * head_dim)
        if qk_norm:
            w[p + "self_attn.q_norm.weight"] = norm_weight(head_dim)
            w[p + "self_attn.k_norm.weight"] = norm_weight(head_dim)
        w[p + "self_attn.o_proj.weight"] = normal(0.4, dim, heads * head_dim)
        w[p + "post_attention_layernorm.weight"] = norm_weight(dim)
        w[p + "mlp.gate_proj.weight"] = normal(0.2, inter, dim)
        w[p + "mlp.up_proj.weight"] = normal(0.2, inter, dim)
        w[p + "mlp.down_proj.weight"] = normal(0.3, dim, inter)
    w["model.norm.weight"] = norm_weight(dim)
    if not tied:
        w["lm_head.weight"] = normal(0.3, vocab, dim)
    return w


ST_DTYPES = {"float32": ("F32", torch.float32, torch.float32),
             "float16": ("F16", torch.float16, torch.float16),
             "bfloat16": ("BF16", torch.bfloat16, torch.int16)}


def write_safetensors(path, tensors, dtype):
    """Minimal safetensors writer: u64 header length, JSON header, raw data."""
    st_name, torch_dtype, bits_dtype = ST_DTYPES[dtype]
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, arr in tensors.items():
        # numpy has no bfloat16, so round in torch and reinterpret the bits.
        raw = torch.from_numpy(arr).to(torch_dtype).view(bits_dtype).numpy().tobytes()
        header[name] = {"dtype": st_name, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return offset


def write_hf(out_dir, config, weights, dtype, shards=1):
    os.makedirs(out_dir, exist_ok=True)
    if shards == 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), weights, dtype)
    else:
        names = list(weights)
        weight_map, total = {}, 0
        for i in range(shards):
            part = names[i * len(names) // shards:(i + 1) * len(names) // shards]
            fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            total += write_safetensors(os.path.join(out_dir, fname),
                                       {n: weights[n] for n in part}, dtype)
            weight_map.update({n: fname for n in part})
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    write_config(out_dir, dict(config, torch_dtype=dtype))


def write_config(out_dir, config):
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def choose_stop(model_dir, config, mode):
    """Re-points eos_token_id so greedy generation stops where `mode` says."""
    import torch_reference as ref
    m = ref.load_model(model_dir)
    m.stop_ids = []
    ids = ref.greedy(m, GEN_PROMPT, GEN_MAX_TOKENS)
    if mode == "first":
        config["eos_token_id"] = ids[0]
    elif mode == "mid":
        step = next(i for i in range(3, len(ids)) if ids[i] not in ids[:i])
        config["eos_token_id"] = [0, ids[step]]  # a list, as Llama 3 / Qwen configs use
    else:
        eos = config["eos_token_id"]
        assert not set([eos] if isinstance(eos, int) else eos) & set(ids), "eos is reached"
    write_config(model_dir, config)


def make_hf(out_dir, name):
    seed, config, dtype, shards, stop = HF_MODELS[name]
    config = dict(config)
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim", config["hidden_size"] // heads)
    weights = random_weights(seed, config["hidden_size"], config["intermediate_size"],
                             config["num_hidden_layers"], heads, config["num_key_value_heads"],
                             head_dim, config["vocab_size"], config["tie_word_embeddings"],
                             bias=config["model_type"] == "qwen2",
                             qk_norm=config["model_type"] == "qwen3")
    path = os.path.join(out_dir, name)
    write_hf(path, config, weights, dtype, shards)
    choose_stop(path, dict(config, torch_dtype=dtype), stop)
    return path


def write_llama2c(path, dim, hidden, layers, heads, kv_heads, vocab, seq_len, w, wcls=None):
    """Legacy llama2.c layout; w uses HF names with interleaved (llama2.c) q/k rows."""
    head_size = dim // heads
    stack = lambda key: np.stack([w[f"model.layers.{l}.{key}"] for l in range(layers)])
    freqs = 10000.0 ** (-np.arange(0, head_size, 2) / head_size)
    angles = np.arange(seq_len)[:, None] * freqs[None, :]
    parts = [w["model.embed_tokens.weight"], stack("input_layernorm.weight"),
             stack("self_attn.q_proj.weight"), stack("self_attn.k_proj.weight"),
             stack("self_attn.v_proj.weight"), stack("self_attn.o_proj.weight"),
             stack("post_attention_layernorm.weight"), stack("mlp.gate_proj.weight"),
             stack("mlp.down_proj.weight"), stack("mlp.up_proj.weight"),
             w["model.norm.weight"], np.cos(angles), np.sin(angles)]
    if wcls is not None:
        parts.append(wcls)
    header = struct.pack("<7i", dim, hidden, layers, heads, kv_heads,
                         vocab if wcls is None else -vocab, seq_len)
    with open(path, "wb") as f:
        f.write(header + b"".join(np.asarray(p, "<f4").tobytes() for p in parts))


def make_llama2c(out_dir, name):
    seed, dim, hidden, layers, heads, kv_heads, vocab, seq_len, shared = LLAMA2C_MODELS[name]
    w = random_weights(seed, dim, hidden, layers, heads, kv_heads, dim // heads, vocab, shared)
    path = os.path.join(out_dir, name + ".bin")
    write_llama2c(path, dim, hidden, layers, heads, kv_heads, vocab, seq_len, w,
                  None if shared else w["lm_head.weight"])
    return path


def interleaved_to_half(w, heads):
    """Per head, rows [0, 2, 4, ..., 1, 3, 5, ...]: the HF conversion's q/k permute."""
    head_dim = w.shape[0] // heads
    order = np.concatenate([np.arange(0, head_dim, 2), np.arange(1, head_dim, 2)])
    return np.concatenate([w[h * head_dim + order] for h in range(heads)])


def llama2c_to_hf(bin_path, out_dir):
    """An HF Llama directory computing the same function as a llama2.c checkpoint."""
    import torch_reference as ref
    m = ref.load_llama2c(bin_path)
    w = {k: v.numpy().astype(np.float32) for k, v in m.w.items()}
    for l in range(m.n_layers):
        p = f"model.layers.{l}.self_attn."
        w[p + "q_proj.weight"] = interleaved_to_half(w[p + "q_proj.weight"], m.n_heads)
        w[p + "k_proj.weight"] = interleaved_to_half(w[p + "k_proj.weight"], m.n_kv_heads)
    tied = m.lm_head is m.w["model.embed_tokens.weight"]
    if not tied:
        w["lm_head.weight"] = m.lm_head.numpy().astype(np.float32)
    dim = w["model.embed_tokens.weight"].shape[1]
    config = dict(LLAMA, hidden_size=dim, intermediate_size=w["model.layers.0.mlp.up_proj.weight"].shape[0],
                  num_hidden_layers=m.n_layers, num_attention_heads=m.n_heads,
                  num_key_value_heads=m.n_kv_heads, vocab_size=m.lm_head.shape[0],
                  tie_word_embeddings=tied, max_position_embeddings=256, eos_token_id=1)
    write_hf(out_dir, config, w, "float32")


def make_all(out_dir):
    """Writes every model; returns [(name, path)] (HF dirs and .bin files)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    os.makedirs(out_dir, exist_ok=True)
    models = [(name, make_hf(out_dir, name)) for name in HF_MODELS]
    models += [(name, make_llama2c(out_dir, name)) for name in LLAMA2C_MODELS]
    return models


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for name, path in make_all(sys.argv[1]):
        print(name, path)
