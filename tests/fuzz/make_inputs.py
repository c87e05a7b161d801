"""Writes the fuzz targets' seed corpora and the crafted regression inputs.

Usage: make_inputs.py OUT_DIR. Creates OUT_DIR/seeds/<target>/ (small valid
inputs for libFuzzer to mutate) and OUT_DIR/regressions/<target>/ (inputs
that once crashed, hung or exhausted memory; each must now give an error).
Pure Python, so the lit tests that replay the regressions run anywhere.
"""
import json
import os
import struct
import sys

OUT = sys.argv[1]


def write(kind, target, name, data):
    d = os.path.join(OUT, kind, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def llama2c(header, payload=b""):
    return struct.pack("<7i", *header) + payload


# llama2.c checkpoints -------------------------------------------------------
dim, hidden, layers, heads, kv, vocab, seq = 8, 16, 1, 2, 1, 4, 4
floats = (vocab * dim + layers * (dim + dim * dim + 2 * (kv * dim // heads) * dim + dim * dim
                                 + dim + 3 * hidden * dim) + dim + seq * (dim // heads))
write("seeds", "llama2c", "tiny.bin",
      llama2c([dim, hidden, layers, heads, kv, vocab, seq], struct.pack(f"<{floats}f", *([0.01] * floats))))
# Size arithmetic that wrapped to exactly 36 bytes: every tensor outside the file.
write("regressions", "llama2c", "size-wraps-to-36.bin",
      llama2c([16777216, 16770048, 2341, 8388608, 8388608, 4533, 1], bytes(8)))
# 2^24 layers in 92 bytes: gigabytes of tensor entries built before the size check.
write("regressions", "llama2c", "layers-2to24.bin",
      llama2c([4, 4, 16777216, 1, 1, 3, 1], bytes(64)))

# config.json ----------------------------------------------------------------
llama = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16,
         "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "vocab_size": 32, "max_position_embeddings": 64}
write("seeds", "config", "llama.json", json.dumps(llama))
deepseek = {"architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
            "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 4, "vocab_size": 32, "kv_lora_rank": 8,
            "q_lora_rank": None, "qk_rope_head_dim": 4, "qk_nope_head_dim": 4,
            "v_head_dim": 4, "n_routed_experts": None}
write("seeds", "config", "deepseek.json", json.dumps(deepseek))
# The MoE check looped over 2^63 layers.
write("regressions", "config", "deepseek-moe-loop.json",
      json.dumps(dict(deepseek, num_hidden_layers=9223372036854775806,
                      moe_layer_freq=9223372036854775807, n_routed_experts=4)))
# 100,000 '[' overflowed llvm::json::parse's stack.
write("regressions", "config", "nesting-100000.json", "[" * 100000)
write("regressions", "config", "vocab-2to62.json", json.dumps(dict(llama, vocab_size=2**62)))

# safetensors ----------------------------------------------------------------
def safetensors(header, data=b""):
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(text)) + text + data

write("seeds", "safetensors", "two.safetensors",
      safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                   "b": {"dtype": "BF16", "shape": [0], "data_offsets": [8, 8]}},
                  struct.pack("<2f", 1.0, 2.0)))
write("regressions", "safetensors", "nesting-100000.safetensors", safetensors(b"[" * 100000))

# tokenizer.json -------------------------------------------------------------
vocab_json = {"<unk>": 0, "a": 1, "b": 2, "ab": 3, "\u0120": 4}
write("seeds", "tokenizer", "bpe.json", json.dumps(
    {"version": "1.0", "added_tokens": [{"id": 5, "content": "<s>", "special": True}],
     "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
     "decoder": {"type": "ByteLevel"},
     "model": {"type": "BPE", "vocab": vocab_json, "merges": ["a b"]}}))
# SentencePiece style (Llama-2): normalizers, character BPE, byte fallback,
# the Replace/ByteFallback/Fuse/Strip decoder; and Metaspace with NFKC.
sp_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581": 3, "a": 4, "b": 5, "\u2581a": 6,
            **{"<0x%02X>" % b: 7 + b for b in range(256)}}
sp_added = [{"id": 0, "content": "<unk>", "special": True},
            {"id": 1, "content": "<s>", "special": True}]
sp_model = {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
            "vocab": sp_vocab, "merges": ["\u2581 a"]}
write("seeds", "tokenizer", "llama2.json", json.dumps(
    {"version": "1.0", "added_tokens": sp_added,
     "normalizer": {"type": "Sequence", "normalizers": [
         {"type": "Prepend", "prepend": "\u2581"},
         {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
     "pre_tokenizer": None,
     "decoder": {"type": "Sequence", "decoders": [
         {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
         {"type": "ByteFallback"}, {"type": "Fuse"},
         {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
     "model": sp_model}))
write("seeds", "tokenizer", "metaspace.json", json.dumps(
    {"version": "1.0", "added_tokens": sp_added,
     "normalizer": {"type": "Sequence", "normalizers": [
         {"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Strip"}]},
     "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                       "prepend_scheme": "first", "split": True},
     "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first"},
     "model": sp_model}))
write("regressions", "tokenizer", "nesting-100000.json", "{\"a\":" * 100000)

# llama2.c tokenizer ---------------------------------------------------------
tok = struct.pack("<i", 4)
for i, piece in enumerate([b"<unk>", b"\n<s>\n", b"a", b"b", b"ab"]):
    tok += struct.pack("<fi", float(-i), len(piece)) + piece
write("seeds", "llama2c-tokenizer", "tok5.bin", tok)

# recipe.json and checkpoint.json -------------------------------------------
write("seeds", "recipe", "recipe.json", json.dumps(
    {"seed": 0, "batch": 2, "seq_len": 8, "stages": [{"stage": "layerwise", "steps": 2}]}))
write("regressions", "recipe", "nesting-100000.json", "[" * 100000)
write("seeds", "checkpoint", "checkpoint.json", json.dumps(
    {"stage": 0, "step": 1, "file": "checkpoint-0-1.safetensors", "recipe": {"seed": 0},
     "job": {"job": "distill", "edit": "target=mla"}, "log": []}))
write("regressions", "checkpoint", "file-outside.json", json.dumps(
    {"stage": 0, "step": 1, "file": "../../secret.safetensors", "recipe": {}, "job": {},
     "log": []}))

# .mlir: the lit tests' modules (valid and invalid) -------------------------
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for folder in ("ir", "passes"):
    lit = os.path.join(root, "lit", folder)
    for name in sorted(os.listdir(lit)):
        if name.endswith(".mlir"):
            with open(os.path.join(lit, name), "rb") as f:
                write("seeds", "mlir", f"{folder}-{name}", f.read())
