"""Independent float64 PyTorch DeepSeek-V2 (dense MLA) reference.

Follows the structure of DeepSeek's modeling_deepseek.py (DeepseekV2Attention,
DeepseekV2RMSNorm, DeepseekV2MLP) line for line where the numerics are decided,
and shares nothing with the C++ importer or exporter:

  - softmax_scale = q_head_dim ** -0.5 (q_head_dim = qk_nope + qk_rope), no
    yarn mscale (rope_scaling must be null);
  - apply_rotary_pos_emb de-interleaves q_pe / k_pe (view(..., d/2, 2)
    .transpose) before rotate_half, so stored RoPE rows are interleaved pairs;
  - q_a_layernorm / kv_a_layernorm use DeepseekV2RMSNorm's default eps 1e-6,
    the decoder norms config.rms_norm_eps;
  - every MLP is dense when n_routed_experts is null;
  - kv_lora_rank, qk_rope_head_dim and rope_theta may be lists, one entry per
    layer (attnedit's export of MLA layers of different sizes): layer l uses
    entry l, as if each layer had been built from a config with that value.

    python3 deepseek_reference.py MODEL_DIR --tokens 1,5,9 --logits-out X.npy
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import read_safetensors  # noqa: E402  (plain safetensors reader)


def rms_norm(x, weight, eps=1e-6):  # DeepseekV2RMSNorm (eps default 1e-6)
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    """q, k: [b, h, s, d]; cos/sin: [s, d] (emb = cat(freqs, freqs))."""
    cos, sin = cos[None, None], sin[None, None]
    b, h, s, d = q.shape
    q = q.view(b, h, s, d // 2, 2).transpose(4, 3).reshape(b, h, s, d)
    b, h, s, d = k.shape
    k = k.view(b, h, s, d // 2, 2).transpose(4, 3).reshape(b, h, s, d)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def forward(model_dir, tokens):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["model_type"] == "deepseek_v2", cfg["model_type"]
    assert cfg.get("rope_scaling") is None, "yarn is not part of this reference"
    assert cfg.get("n_routed_experts") is None, "MoE is not part of this reference"
    assert not cfg.get("attention_bias", False)
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    H = cfg["num_attention_heads"]
    n, dv = cfg["qk_nope_head_dim"], cfg["v_head_dim"]
    qr = cfg.get("q_lora_rank")
    eps = cfg["rms_norm_eps"]

    def of_layer(key, l):
        v = cfg[key]
        return v[l] if isinstance(v, list) else v

    T = len(tokens)
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)

    x = w["model.embed_tokens.weight"][torch.tensor(tokens)][None]  # [1, T, hidden]
    for l in range(cfg["num_hidden_layers"]):
        r, kvr = of_layer("qk_rope_head_dim", l), of_layer("kv_lora_rank", l)
        q_head_dim = n + r
        softmax_scale = q_head_dim ** (-0.5)
        # DeepseekV2RotaryEmbedding(qk_rope_head_dim, base=rope_theta)
        inv_freq = 1.0 / (of_layer("rope_theta", l)
                          ** (torch.arange(0, r, 2, dtype=torch.float64) / r))
        freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        p = f"model.layers.{l}."
        a = p + "self_attn."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        if qr is None:
            q = h @ w[a + "q_proj.weight"].T
        else:
            q = rms_norm(h @ w[a + "q_a_proj.weight"].T, w[a + "q_a_layernorm.weight"]) \
                @ w[a + "q_b_proj.weight"].T
        q = q.view(1, T, H, q_head_dim).transpose(1, 2)
        q_nope, q_pe = torch.split(q, [n, r], dim=-1)
        compressed_kv = h @ w[a + "kv_a_proj_with_mqa.weight"].T
        compressed_kv, k_pe = torch.split(compressed_kv, [kvr, r], dim=-1)
        k_pe = k_pe.view(1, T, 1, r).transpose(1, 2)
        kv = (rms_norm(compressed_kv, w[a + "kv_a_layernorm.weight"])
              @ w[a + "kv_b_proj.weight"].T).view(1, T, H, n + dv).transpose(1, 2)
        k_nope, value_states = torch.split(kv, [n, dv], dim=-1)
        q_pe, k_pe = apply_rotary_pos_emb(q_pe, k_pe, cos, sin)
        query_states = torch.cat([q_nope, q_pe], dim=-1)
        key_states = torch.cat([k_nope, k_pe.expand(1, H, T, r)], dim=-1)
        attn = (query_states @ key_states.transpose(2, 3)) * softmax_scale + mask
        attn = attn.softmax(-1)
        o = (attn @ value_states).transpose(1, 2).reshape(1, T, H * dv)
        x = x + o @ w[a + "o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return (x @ head.T)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--logits-out", required=True)
    args = ap.parse_args()
    tokens = [int(t) for t in args.tokens.split(",")]
    logits = forward(args.model, tokens)
    np.save(args.logits_out, logits.numpy().astype(np.float32))


if __name__ == "__main__":
    main()
