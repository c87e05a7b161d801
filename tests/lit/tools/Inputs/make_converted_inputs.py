"""Writes tiny DeepSeek-V2 (dense MLA) and GateSWA checkpoints and broken variants.

Usage: make_converted_inputs.py OUT_DIR. Pure Python (no numpy/torch), like
make_bad_inputs.py, whose safetensors writer it reuses. Each variant breaks one
config field or tensor; import-converted.test checks the error naming it.
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_bad_inputs import model_dir, safetensors_bytes  # noqa: E402

HIDDEN, FFN, LAYERS, HEADS, VOCAB = 16, 32, 2, 2, 32
KV_LORA, NOPE, ROPE, V = 8, 4, 4, 6
HEAD_DIM = HIDDEN // HEADS


def tensors(attention, kv_lora=(KV_LORA,) * LAYERS, rope=(ROPE,) * LAYERS):
    """kv_lora / rope: each layer's MLA sizes (a per-layer config's lists)."""
    rng = random.Random(1)

    def t(*shape, mean=0.0):
        n = 1
        for d in shape:
            n *= d
        return shape, [mean + rng.gauss(0, 0.2) for _ in range(n)]

    out = {"model.embed_tokens.weight": t(VOCAB, HIDDEN), "model.norm.weight": t(HIDDEN, mean=1)}
    for l in range(LAYERS):
        p = f"model.layers.{l}."
        a = p + "self_attn."
        out[p + "input_layernorm.weight"] = t(HIDDEN, mean=1)
        out[p + "post_attention_layernorm.weight"] = t(HIDDEN, mean=1)
        out[p + "mlp.gate_proj.weight"] = t(FFN, HIDDEN)
        out[p + "mlp.up_proj.weight"] = t(FFN, HIDDEN)
        out[p + "mlp.down_proj.weight"] = t(HIDDEN, FFN)
        if attention == "mla":
            out[a + "q_proj.weight"] = t(HEADS * (NOPE + rope[l]), HIDDEN)
            out[a + "kv_a_proj_with_mqa.weight"] = t(kv_lora[l] + rope[l], HIDDEN)
            out[a + "kv_a_layernorm.weight"] = t(kv_lora[l], mean=1)
            out[a + "kv_b_proj.weight"] = t(HEADS * (NOPE + V), kv_lora[l])
            out[a + "o_proj.weight"] = t(HIDDEN, HEADS * V)
        else:
            for proj in ("q_proj", "k_proj", "v_proj"):
                out[a + proj + ".weight"] = t(HEADS * HEAD_DIM, HIDDEN)
            out[a + "o_proj.weight"] = t(HIDDEN, HEADS * HEAD_DIM)
            out[a + "gate_proj.weight"] = t(HEADS, HIDDEN)
            if l == 0:
                out[a + "sinks"] = t(HEADS)
    return out


DEEPSEEK = {"architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
            "hidden_size": HIDDEN, "intermediate_size": FFN, "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS, "num_key_value_heads": HEADS, "vocab_size": VOCAB,
            "q_lora_rank": None, "kv_lora_rank": KV_LORA, "qk_nope_head_dim": NOPE,
            "qk_rope_head_dim": ROPE, "v_head_dim": V, "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0, "rope_scaling": None, "max_position_embeddings": 64,
            "tie_word_embeddings": True, "attention_bias": False, "hidden_act": "silu",
            "n_routed_experts": None, "first_k_dense_replace": LAYERS,
            "bos_token_id": 1, "eos_token_id": 2}

GATESWA = {"architectures": ["GateSwaForCausalLM"], "model_type": "gate_swa",
           "base_architecture": "LlamaForCausalLM", "hidden_size": HIDDEN,
           "intermediate_size": FFN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
           "num_key_value_heads": HEADS, "head_dim": HEAD_DIM, "vocab_size": VOCAB,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 64,
           "tie_word_embeddings": True, "hidden_act": "silu", "sliding_window": 3,
           "layer_types": ["sliding_attention", "full_attention"],
           "attention_gate": "headwise", "layer_gates": [True, True],
           "attention_sinks": True, "layer_sinks": [True, False],
           "bos_token_id": 1, "eos_token_id": 2}


def changed(base, **changes):
    c = dict(base)
    for k, v in changes.items():
        if v == "DELETE":
            c.pop(k, None)
        else:
            c[k] = v
    return c


def main(root):
    os.makedirs(root, exist_ok=True)
    mla, swa = tensors("mla"), tensors("swa")
    mla_bytes, swa_bytes = safetensors_bytes(mla), safetensors_bytes(swa)
    model_dir(root, "deepseek", DEEPSEEK, mla_bytes)
    model_dir(root, "deepseek-v3", changed(DEEPSEEK, architectures=["DeepseekV3ForCausalLM"],
                                           model_type="deepseek_v3"), mla_bytes)
    model_dir(root, "gateswa", GATESWA, swa_bytes)
    # MLA layers of different sizes: per-layer lists, one entry per layer.
    per_layer = changed(DEEPSEEK, kv_lora_rank=[8, 6], qk_rope_head_dim=[4, 2],
                        rope_theta=[10000.0, 500.0])
    per_layer_bytes = safetensors_bytes(tensors("mla", kv_lora=(8, 6), rope=(4, 2)))
    model_dir(root, "deepseek-per-layer", per_layer, per_layer_bytes)

    bad_configs = {
        "deepseek-moe": changed(DEEPSEEK, n_routed_experts=4, first_k_dense_replace=1),
        "deepseek-v3-default-moe": changed(DEEPSEEK, architectures=["DeepseekV3ForCausalLM"],
                                           model_type="deepseek_v3",
                                           n_routed_experts="DELETE",
                                           first_k_dense_replace=1),
        "deepseek-yarn": changed(DEEPSEEK, rope_scaling={"type": "yarn", "factor": 40}),
        "deepseek-bias": changed(DEEPSEEK, attention_bias=True),
        "deepseek-odd-rope": changed(DEEPSEEK, qk_rope_head_dim=3),
        "deepseek-zero-rank": changed(DEEPSEEK, kv_lora_rank=0),
        "deepseek-short-list": changed(DEEPSEEK, kv_lora_rank=[8, 6, 4]),
        "deepseek-null-rank": changed(DEEPSEEK, kv_lora_rank=[8, None]),
        "deepseek-odd-rope-entry": changed(DEEPSEEK, qk_rope_head_dim=[4, 3]),
        "deepseek-theta-entry": changed(DEEPSEEK, rope_theta=[10000.0, "fast"]),
        "llama-theta-list": changed(GATESWA, architectures=["LlamaForCausalLM"],
                                    model_type="llama", rope_theta=[10000.0, 500.0]),
        "gateswa-rank-on-full-layer": changed(GATESWA, layer_types=["mla", "full_attention"],
                                              kv_lora_rank=[8, 8]),
        "gateswa-no-base": changed(GATESWA, base_architecture="DELETE"),
        "gateswa-bad-base": changed(GATESWA, base_architecture="MistralForCausalLM"),
        "gateswa-layer-types": changed(GATESWA, layer_types=["full_attention"]),
        "gateswa-layer-type-name": changed(GATESWA, layer_types=["global", "full_attention"]),
        "gateswa-no-window": changed(GATESWA, sliding_window="DELETE"),
        "gateswa-gate-kind": changed(GATESWA, attention_gate="sigmoid"),
        "gateswa-gates-without-kind": changed(GATESWA, attention_gate="none"),
        "gateswa-sinks-flag": changed(GATESWA, attention_sinks=False),
    }
    for name, config in bad_configs.items():
        model_dir(root, name, config, swa_bytes if name.startswith("gateswa") else mla_bytes)

    missing = dict(mla)
    del missing["model.layers.1.self_attn.kv_b_proj.weight"]
    model_dir(root, "deepseek-missing-tensor", DEEPSEEK, safetensors_bytes(missing))
    misshaped = dict(mla)
    misshaped["model.layers.0.self_attn.kv_a_proj_with_mqa.weight"] = (
        (KV_LORA, HIDDEN), [0.0] * (KV_LORA * HIDDEN))
    model_dir(root, "deepseek-misshaped", DEEPSEEK, safetensors_bytes(misshaped))
    no_sinks = dict(swa)
    del no_sinks["model.layers.0.self_attn.sinks"]
    model_dir(root, "gateswa-missing-sinks", GATESWA, safetensors_bytes(no_sinks))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
