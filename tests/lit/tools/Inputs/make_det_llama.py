"""Writes a one-layer Llama whose next token depends only on the current one.

Usage: make_det_llama.py OUT_DIR A:B,B:C,... [CONTEXT]. Each A:B makes B the certain
next token after A (attention and MLP are zero; the embedding is one-hot and
lm_head maps it to B's row), so a test chooses the exact token sequence a
server sees, e.g. byte-fallback tokens that spell one character between
them. The vocabulary is 512 ids, to pair with stories260K's tok512.model.
Pure Python, like make_bad_inputs.py, whose writer it reuses.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_bad_inputs import model_dir, safetensors_bytes, with_config  # noqa: E402

HIDDEN, FFN, HEADS, KV_HEADS, VOCAB = 16, 16, 2, 1, 512
CONTEXT = int(sys.argv[3]) if len(sys.argv) > 3 else 256
HEAD_DIM = HIDDEN // HEADS

edges = [tuple(int(t) for t in e.split(":")) for e in sys.argv[2].split(",")]
tokens = []
for a, b in edges:
    for t in (a, b):
        if t not in tokens:
            tokens.append(t)
assert len(tokens) <= HIDDEN, "more distinct tokens than hidden units"


def zeros(*shape):
    n = 1
    for d in shape:
        n *= d
    return shape, [0.0] * n


embed, head = zeros(VOCAB, HIDDEN), zeros(VOCAB, HIDDEN)
for k, t in enumerate(tokens):
    embed[1][t * HIDDEN + k] = 1.0
for a, b in edges:
    head[1][b * HIDDEN + tokens.index(a)] = 10.0
p = "model.layers.0."
weights = {"model.embed_tokens.weight": embed, "lm_head.weight": head,
           "model.norm.weight": ((HIDDEN,), [1.0] * HIDDEN),
           p + "input_layernorm.weight": ((HIDDEN,), [1.0] * HIDDEN),
           p + "post_attention_layernorm.weight": ((HIDDEN,), [1.0] * HIDDEN),
           p + "self_attn.q_proj.weight": zeros(HEADS * HEAD_DIM, HIDDEN),
           p + "self_attn.k_proj.weight": zeros(KV_HEADS * HEAD_DIM, HIDDEN),
           p + "self_attn.v_proj.weight": zeros(KV_HEADS * HEAD_DIM, HIDDEN),
           p + "self_attn.o_proj.weight": zeros(HIDDEN, HEADS * HEAD_DIM),
           p + "mlp.gate_proj.weight": zeros(FFN, HIDDEN),
           p + "mlp.up_proj.weight": zeros(FFN, HIDDEN),
           p + "mlp.down_proj.weight": zeros(HIDDEN, FFN)}
config = with_config(hidden_size=HIDDEN, intermediate_size=FFN, num_hidden_layers=1,
                     num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                     vocab_size=VOCAB, max_position_embeddings=CONTEXT)
out = os.path.abspath(sys.argv[1])
model_dir(os.path.dirname(out), os.path.basename(out), config, safetensors_bytes(weights))
