"""Independent float64 PyTorch reference for the models attnedit imports.

Reads HF Llama/Qwen2/Qwen3 checkpoints (config.json + safetensors, single or
sharded, f32/f16/bf16) and legacy llama2.c .bin checkpoints with nothing but
json/struct/numpy/torch, so it shares no code or assumptions with the C++
importer. Everything is computed in float64 over the full sequence (no KV
cache), which makes it a slow but unambiguous oracle.

    python3 torch_reference.py MODEL --tokens 1,5,9 [--logits-out X.npy] [--generate N]
    python3 torch_reference.py --self-check [--stories DIR]
"""
import argparse
import json
import math
import os
import struct
import sys
import tempfile
from types import SimpleNamespace

import numpy as np
import torch

# ---------------------------------------------------------------------------
# Loading


def read_safetensors(path):
    """Returns {name: float64 tensor}; the on-disk values are upcast exactly."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[base + begin:base + end]
        dtype = info["dtype"]
        if dtype == "BF16":
            # bf16 is the top half of an f32: widen the bits, no rounding.
            arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype == "F16":
            arr = np.frombuffer(raw, "<f2")
        elif dtype == "F32":
            arr = np.frombuffer(raw, "<f4")
        else:
            raise ValueError(f"{path}: {name}: unsupported dtype {dtype}")
        out[name] = torch.from_numpy(arr.astype(np.float64).reshape(info["shape"]))
    return out


def rope_inv_freq(head_dim, theta, scaling=None):
    """theta^(-2i/head_dim), optionally rescaled as in HF _compute_llama3_parameters."""
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    if not scaling or scaling.get("rope_type", scaling.get("type")) in (None, "default"):
        return inv
    if scaling.get("rope_type", scaling.get("type")) != "llama3":
        raise ValueError(f"unsupported rope_scaling {scaling}")
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_ctx = scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old_ctx / low, inv / factor, inv)
    smooth = (old_ctx / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old_ctx / high) & (wavelen <= old_ctx / low)
    return torch.where(medium, smoothed, scaled)


def load_hf(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    # transformers loads model.safetensors first, its shard index only without it.
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(os.path.join(model_dir, "model.safetensors")):
        files = ["model.safetensors"]
    else:
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    w = {}
    for name in files:
        w.update(read_safetensors(os.path.join(model_dir, name)))
    n_heads = cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_heads
    eos = cfg.get("eos_token_id")
    stop = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    tied = cfg.get("tie_word_embeddings", False)
    # As transformers >= 5 reads it: rope_scaling if given, else rope_parameters,
    # whose rope_theta wins over the top-level one.
    rope = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    theta = rope.get("rope_theta", cfg.get("rope_theta", 10000.0))
    return SimpleNamespace(
        w=w, n_layers=cfg["num_hidden_layers"], n_heads=n_heads,
        n_kv_heads=cfg.get("num_key_value_heads", n_heads), head_dim=head_dim,
        eps=cfg["rms_norm_eps"], interleaved=False,
        inv_freq=rope_inv_freq(head_dim, theta, rope),
        lm_head=w["model.embed_tokens.weight"] if tied else w["lm_head.weight"],
        stop_ids=stop)


def load_llama2c(path):
    """Legacy (version 0) llama2.c checkpoint, mapped onto HF tensor names."""
    with open(path, "rb") as f:
        data = f.read()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = struct.unpack_from("<7i", data, 0)
    shared = vocab > 0  # run.c: a negative vocab_size means an unshared classifier
    vocab = abs(vocab)
    head_size = dim // n_heads
    kv_dim = n_kv_heads * head_size
    floats = np.frombuffer(data, "<f4", offset=28).astype(np.float64)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        if pos + n > floats.size:
            raise ValueError(f"{path}: truncated checkpoint")
        t = torch.from_numpy(floats[pos:pos + n].reshape(shape).copy())
        pos += n
        return t

    embed = take(vocab, dim)
    rms_att = take(n_layers, dim)
    wq, wk = take(n_layers, dim, dim), take(n_layers, kv_dim, dim)
    wv, wo = take(n_layers, kv_dim, dim), take(n_layers, dim, dim)
    rms_ffn = take(n_layers, dim)
    w1, w2, w3 = take(n_layers, hidden, dim), take(n_layers, dim, hidden), take(n_layers, hidden, dim)
    final = take(dim)
    take(seq_len, head_size // 2)  # freq_cis_real: current run.c recomputes RoPE instead
    take(seq_len, head_size // 2)  # freq_cis_imag
    wcls = embed if shared else take(vocab, dim)
    w = {"model.embed_tokens.weight": embed, "model.norm.weight": final}
    for l in range(n_layers):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = rms_att[l]
        w[p + "self_attn.q_proj.weight"] = wq[l]
        w[p + "self_attn.k_proj.weight"] = wk[l]
        w[p + "self_attn.v_proj.weight"] = wv[l]
        w[p + "self_attn.o_proj.weight"] = wo[l]
        w[p + "post_attention_layernorm.weight"] = rms_ffn[l]
        w[p + "mlp.gate_proj.weight"] = w1[l]
        w[p + "mlp.down_proj.weight"] = w2[l]
        w[p + "mlp.up_proj.weight"] = w3[l]
    return SimpleNamespace(
        w=w, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_size,
        eps=1e-5, interleaved=True, inv_freq=rope_inv_freq(head_size, 10000.0),
        lm_head=wcls, stop_ids=[1])  # run.c stops when BOS (1) comes out


def load_model(path):
    return load_hf(path) if os.path.isdir(path) else load_llama2c(path)


# ---------------------------------------------------------------------------
# Forward and greedy decoding


def rmsnorm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def apply_rope(x, cos, sin, interleaved):
    """x: [T, heads, head_dim]; cos/sin: [T, 1, head_dim/2]."""
    if interleaved:  # llama2.c rotates adjacent pairs (2i, 2i+1)
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).flatten(-2)
    half = x.shape[-1] // 2  # HF rotate_half pairs (i, i + head_dim/2)
    a, b = x[..., :half], x[..., half:]
    return torch.cat((a * cos - b * sin, b * cos + a * sin), -1)


def forward(m, tokens):
    """Logits [T, vocab] (float64) for every position of `tokens`."""
    return forward_batch(m, torch.tensor([list(tokens)]))[0]


def forward_batch(m, tokens):
    """Logits [B, T, vocab] (in the weights' dtype) for a [B, T] id tensor."""
    w = m.w
    B, T = tokens.shape
    x = w["model.embed_tokens.weight"][tokens]
    dtype = x.dtype
    angles = torch.arange(T, dtype=torch.float64)[:, None] * m.inv_freq[None, :]
    cos, sin = angles.cos()[:, None, :].to(dtype), angles.sin()[:, None, :].to(dtype)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    group = m.n_heads // m.n_kv_heads

    def linear(h, name):
        y = h @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y

    for l in range(m.n_layers):
        p = f"model.layers.{l}."
        h = rmsnorm(x, w[p + "input_layernorm.weight"], m.eps)
        q = linear(h, p + "self_attn.q_proj").view(B, T, m.n_heads, m.head_dim)
        k = linear(h, p + "self_attn.k_proj").view(B, T, m.n_kv_heads, m.head_dim)
        v = linear(h, p + "self_attn.v_proj").view(B, T, m.n_kv_heads, m.head_dim)
        if p + "self_attn.q_norm.weight" in w:  # Qwen3: per-head RMSNorm before RoPE
            q = rmsnorm(q, w[p + "self_attn.q_norm.weight"], m.eps)
            k = rmsnorm(k, w[p + "self_attn.k_norm.weight"], m.eps)
        q = apply_rope(q, cos, sin, m.interleaved)
        k = apply_rope(k, cos, sin, m.interleaved)
        # GQA: query head h reads kv head h // group (HF repeat_kv, run.c h / kv_mul).
        k = k.repeat_interleave(group, dim=2)
        v = v.repeat_interleave(group, dim=2)
        scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(m.head_dim)
        att = scores.masked_fill(future, float("-inf")).softmax(-1)
        o = torch.einsum("bhts,bshd->bthd", att, v).reshape(B, T, m.n_heads * m.head_dim)
        x = x + linear(o, p + "self_attn.o_proj")
        h = rmsnorm(x, w[p + "post_attention_layernorm.weight"], m.eps)
        gate = torch.nn.functional.silu(linear(h, p + "mlp.gate_proj"))
        x = x + linear(gate * linear(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    return rmsnorm(x, w["model.norm.weight"], m.eps) @ m.lm_head.T


def greedy(m, prompt, max_tokens, margins=None):
    """New ids by argmax; stops before a stop id or after max_tokens.

    If `margins` is a list, the top-1 minus top-2 logit gap of every step is
    appended, so callers can tell a real mismatch from a near-tie.
    """
    ids, out = list(prompt), []
    for _ in range(max_tokens):
        logits = forward(m, ids)[-1]
        if margins is not None:
            top = logits.topk(2).values
            margins.append(float(top[0] - top[1]))
        nxt = int(logits.argmax())
        if nxt in m.stop_ids:
            break
        out.append(nxt)
        ids.append(nxt)
    return out


def rel_error(got, ref):
    """max |got - ref| relative to the logits' scale."""
    ref = np.asarray(ref, np.float64)
    return float(np.abs(np.asarray(got, np.float64) - ref).max() / max(1e-6, np.abs(ref).max()))


# ---------------------------------------------------------------------------
# Self-check


def read_llama2c_tokenizer(path, vocab_size):
    """tokenizer.bin: int32 max_len, then per id: f32 score, int32 len, bytes."""
    with open(path, "rb") as f:
        data = f.read()
    off, vocab = 4, []
    for _ in range(vocab_size):
        _score, n = struct.unpack_from("<fi", data, off)
        vocab.append(data[off + 8:off + 8 + n])
        off += 8 + n
    return vocab


def decode(vocab, ids, prev=1):
    """As run.c's decode: strip the space after BOS, map <0xNN> to raw bytes."""
    out = b""
    for i in ids:
        piece = vocab[i]
        if prev == 1 and piece.startswith(b" "):
            piece = piece[1:]
        if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
            piece = bytes([int(piece[3:5], 16)])
        out += piece
        prev = i
    return out.decode("utf-8", errors="replace")


def self_check(stories_dir):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_models

    ok = True
    # 1. The llama2.c path reproduces the real stories260K model's greedy story.
    ckpt = os.path.join(stories_dir, "stories260K.bin")
    if os.path.exists(ckpt):
        m = load_llama2c(ckpt)
        ids = greedy(m, [1], 40)
        vocab = read_llama2c_tokenizer(os.path.join(stories_dir, "tok512.bin"), m.lm_head.shape[0])
        text = decode(vocab, ids)
        want = ("Once upon a time, there was a little girl named Lily. "
                "She loved to play outside in the park.")
        good = text.startswith(want)
        ok &= good
        print(f"{'PASS' if good else 'FAIL'} stories260K greedy: {text!r}")
    else:
        print(f"SKIP stories260K: {ckpt} not found")

    with tempfile.TemporaryDirectory() as tmp:
        models = make_models.make_all(tmp)
        # 2. A llama2.c model and its HF conversion (q/k rows permuted to the
        #    rotate-half layout) agree: checks both RoPE layouts against each other.
        for name, path in models:
            if not name.startswith("llama2c"):
                continue
            hf_dir = os.path.join(tmp, name + "_as_hf")
            make_models.llama2c_to_hf(path, hf_dir)
            toks = [1, 5, 9, 23, 42, 7, 77, 3, 64]
            err = rel_error(forward(load_model(hf_dir), toks), forward(load_model(path), toks))
            good = err < 1e-12
            ok &= good
            print(f"{'PASS' if good else 'FAIL'} {name} llama2.c vs HF conversion: rel err {err:.2e}")
        # 3. llama3 rope_scaling moves the logits far beyond the parity tolerance,
        #    so an importer ignoring it fails the test.
        llama3 = dict(models)["llama3"]
        m = load_model(llama3)
        scaled = forward(m, make_models.FORWARD_TOKENS)
        with open(os.path.join(llama3, "config.json")) as f:
            m.inv_freq = rope_inv_freq(m.head_dim, json.load(f)["rope_theta"])
        err = rel_error(forward(m, make_models.FORWARD_TOKENS), scaled)
        ok &= err > 1e-2
        print(f"{'PASS' if err > 1e-2 else 'FAIL'} llama3 without rope_scaling differs: rel {err:.2e}")
        # 3b. So does llama3_v5's rope_parameters, read as the importer once did
        #     (theta 10000, no scaling).
        m = load_model(dict(models)["llama3_v5"])
        scaled = forward(m, make_models.FORWARD_TOKENS)
        m.inv_freq = rope_inv_freq(m.head_dim, 10000.0)
        err = rel_error(forward(m, make_models.FORWARD_TOKENS), scaled)
        ok &= err > 1e-2
        print(f"{'PASS' if err > 1e-2 else 'FAIL'} llama3_v5 without rope_parameters differs: "
              f"rel {err:.2e}")
        # 4. Every generated model gives non-degenerate logits and clear greedy margins,
        #    so a float32 implementation cannot flip an argmax by rounding.
        for name, path in models:
            m = load_model(path)
            logits = forward(m, make_models.FORWARD_TOKENS)
            margins = []
            ids = greedy(m, make_models.GEN_PROMPT, make_models.GEN_MAX_TOKENS, margins)
            scale = float(logits.abs().max())
            good = float(logits.std()) > 0.1 and min(margins) > 1e-3 * scale
            ok &= good
            print(f"{'PASS' if good else 'FAIL'} {name}: logit std {float(logits.std()):.3f}, "
                  f"min greedy margin {min(margins):.2e} (scale {scale:.2f}), ids {ids}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", help="HF model directory or llama2.c .bin")
    ap.add_argument("--tokens", help="comma-separated prompt ids")
    ap.add_argument("--logits-out", help="write float32 logits [T, vocab] as .npy")
    ap.add_argument("--generate", type=int, metavar="N", help="print N greedy tokens")
    ap.add_argument("--self-check", action="store_true")
    ap.add_argument("--stories", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../../../shared/data/stories260K"))
    args = ap.parse_args()
    if args.self_check:
        return 0 if self_check(args.stories) else 1
    if not args.model or not args.tokens:
        ap.error("MODEL and --tokens are required")
    m = load_model(args.model)
    tokens = [int(t) for t in args.tokens.split(",")]
    if args.generate is not None:
        print("ids: " + ",".join(map(str, greedy(m, tokens, args.generate))))
    else:
        logits = forward(m, tokens)
        if args.logits_out:
            np.save(args.logits_out, logits.numpy().astype(np.float32))
        print(logits[-1].argmax().item())
    return 0


if __name__ == "__main__":
    sys.exit(main())
