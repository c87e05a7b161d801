#!/usr/bin/python3
"""Training throughput of MLA distillation, attnedit vs PyTorch, on a ~10M-parameter
Llama-shaped teacher (random weights: throughput does not depend on them).

    /usr/bin/python3 bench/train_throughput.py [--build build] [--batch 4] [--seq-len 256]
        [--steps 10] [--threads N] [--backends reference,cpu]
        [--out bench/results/train_throughput.json]

attnedit: `attnedit-run train` (1 step) makes the teacher, `attnedit-run distill` (once
per backend in --backends, interleaved with PyTorch in each round) runs
stage 1 (layerwise MSE) and stage 2 (model KL) for --steps steps each; its figure per
stage is the median tokens_per_s of training_log.json over the steps after the first 2.
PyTorch (Debian's python3-torch, f32, same threads, OpenBLAS at its best kernel:
cpu_backend.best_openblas_coretype): the same step by hand -- teacher
forward without grad, MLA student (the same shapes, loaded from attnedit's initial
student parameters), mean-over-layers MSE or token-mean KL at temperature 1, backward,
global-norm clipping, AdamW over the MLA parameters only. PyTorch runs the batch as one
[batch, seq_len] tensor (its natural way); attnedit runs one lane per core (the
recipe's "lanes"), each lane's sequences packed into one call of all their rows with
single-threaded GEMMs, and sums the lanes' gradients; a "PyTorch, one sequence at a
time" column is printed too.
Beside the rates: each stage's model FLOPs per token (flop_per_token), the
GFLOP/s and share of the FMA peak they make for both sides, and the share 3x
PyTorch would take; the peak and sgemm rate come from attnedit-bench-cpu at
the start of every round, the highest of the rounds counting.
PyTorch's tokens are random ids (the timing does not depend on them); attnedit reads
tinyshakespeare. Needs ../shared/data/tinyshakespeare/input.txt and python3-torch
(skipped, saying so, without either).
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

# PyTorch runs in this process, so its settings go into the environment
# before numpy or torch loads OpenBLAS and libgomp, which read them once.
# libgomp's default (active) spin-waiting makes every PyTorch op wait out a
# scheduler slice whenever another process holds a core: on a busy 2-core
# machine a forward pass took 15x longer with 2 threads than with 1. Passive
# waiting removes that pathology.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu_backend  # noqa: E402  (the machine's limits, PyTorch's OpenBLAS kernel)

# attnedit's commands run with the caller's environment, as a user's would.
CALLER_ENV = dict(os.environ)
os.environ.pop("OPENBLAS_CORETYPE", None)
os.environ.update(cpu_backend.torch_env(cpu_backend.best_openblas_coretype()))
import cli  # noqa: E402  (bench/cli.py: the shared argument types)

# numpy, torch and torch.nn.functional (F), imported by main once it knows
# PyTorch is there: without it, --help works and the figures are skipped.
np = torch = F = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
TOKENIZER = os.path.join(ROOT, "scripts", "data", "stories260K", "tok512.bin")
# The backends `attnedit-run distill --backend` trains on here.
BACKENDS = ("reference", "cpu")
EDIT = "target=mla kv-lora-rank=64 qk-rope-head-dim=16 init=svd"

# ~10M parameters: 10 x (attention 196,608 + MLP 786,432 + norms 512) + 2 x 512 x 256.
TEACHER_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 10,
    "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 512,
    "max_position_embeddings": 256, "bos_token_id": 1, "eos_token_id": 2,
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
}
# attnedit's recipe defaults (runtime/include/attnedit/Runtime/Training/Trainer.h).
ADAM = {"betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.01}
CLIP = 1.0
MLA_NORM_EPS = 1e-6  # attnedit.mla's default norm_eps


def run(cmd, env=None):
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit("failed: %s\n%s%s" % (" ".join(cmd), done.stdout, done.stderr))
    return done, time.perf_counter() - start


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            sys.exit("%s: %s is %s, expected F32" % (path, name, info["dtype"]))
        s, e = info["data_offsets"]
        array = np.frombuffer(blob, dtype="<f4", count=(e - s) // 4, offset=8 + n + s)
        tensors[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return tensors


# ---------------------------------------------------------------------------
# PyTorch model (torch 1.13: no scaled_dot_product_attention, no nn.RMSNorm)
# ---------------------------------------------------------------------------

def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(dim, theta, seq_len):
    inv = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = torch.arange(seq_len, dtype=torch.float64)[:, None] * inv[None, :]
    angles = torch.cat([angles, angles], -1)
    return angles.cos().float(), angles.sin().float()  # [T, dim]


def apply_rope(x, cos, sin):  # x [..., T, dim], HF rotate-half
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin


def causal_attention(q, k, v, scale, mask):  # [B, H, T, d], mask [T, T] additive
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale + mask
    return torch.matmul(torch.softmax(scores, -1), v)


class Shapes:
    def __init__(self, cfg, mla_cfg, seq_len):
        self.d = cfg["hidden_size"]
        self.inter = cfg["intermediate_size"]
        self.vocab = cfg["vocab_size"]
        self.layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg["num_key_value_heads"]
        self.head_dim = cfg.get("head_dim") or self.d // self.heads
        self.eps = cfg["rms_norm_eps"]
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.rank = mla_cfg["kv_lora_rank"]
        self.nope = mla_cfg["qk_nope_head_dim"]
        self.rope = mla_cfg["qk_rope_head_dim"]
        self.vdim = mla_cfg["v_head_dim"]
        theta = cfg.get("rope_theta", 10000.0)
        self.cos_t, self.sin_t = rope_tables(self.head_dim, theta, seq_len)
        self.cos_s, self.sin_s = rope_tables(self.rope, theta, seq_len)
        self.mask = torch.full((seq_len, seq_len), float("-inf")).triu(1)


def teacher_attention(s, W, l, x):
    B, T, _ = x.shape
    p = "model.layers.%d.self_attn." % l
    q = F.linear(x, W[p + "q_proj.weight"]).view(B, T, s.heads, s.head_dim).transpose(1, 2)
    k = F.linear(x, W[p + "k_proj.weight"]).view(B, T, s.kv_heads, s.head_dim).transpose(1, 2)
    v = F.linear(x, W[p + "v_proj.weight"]).view(B, T, s.kv_heads, s.head_dim).transpose(1, 2)
    cos, sin = s.cos_t[:T], s.sin_t[:T]
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    group = s.heads // s.kv_heads
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    o = causal_attention(q, k, v, s.scale, s.mask[:T, :T]).transpose(1, 2).reshape(B, T, -1)
    return F.linear(o, W[p + "o_proj.weight"])


def mla_attention(s, P, l, x):
    """DeepSeek-V2 MLA, q_lora_rank 0, not absorbed (as attnedit trains it)."""
    B, T, _ = x.shape
    p = "model.layers.%d.self_attn." % l
    h, n, r = s.heads, s.nope, s.rope
    q = F.linear(x, P[p + "q_proj.weight"]).view(B, T, h, n + r).transpose(1, 2)
    q_nope, q_pe = q.split([n, r], -1)
    latent = F.linear(x, P[p + "kv_a_proj_with_mqa.weight"])
    c, k_pe = latent.split([s.rank, r], -1)
    c = rms_norm(c, P[p + "kv_a_layernorm.weight"], MLA_NORM_EPS)
    kv = F.linear(c, P[p + "kv_b_proj.weight"]).view(B, T, h, n + s.vdim).transpose(1, 2)
    k_nope, v = kv.split([n, s.vdim], -1)
    cos, sin = s.cos_s[:T], s.sin_s[:T]
    q_pe = apply_rope(q_pe, cos, sin)
    k_pe = apply_rope(k_pe.unsqueeze(1), cos, sin).expand(B, h, T, r)
    q = torch.cat([q_nope, q_pe], -1)
    k = torch.cat([k_nope, k_pe], -1)
    o = causal_attention(q, k, v, s.scale, s.mask[:T, :T])
    o = o.transpose(1, 2).reshape(B, T, h * s.vdim)
    return F.linear(o, P[p + "o_proj.weight"])


def mlp(W, l, x):
    p = "model.layers.%d.mlp." % l
    return F.linear(F.silu(F.linear(x, W[p + "gate_proj.weight"])) *
                    F.linear(x, W[p + "up_proj.weight"]), W[p + "down_proj.weight"])


def forward(s, W, tokens, attention, collect=None, stop_after_attention=None):
    """Llama forward; `attention(l, x_normed)`. With `collect`, appends each layer's
    (normalised attention input, attention output); with `stop_after_attention`,
    returns after that layer's attention (what layerwise distillation needs)."""
    x = F.embedding(tokens, W["model.embed_tokens.weight"])
    for l in range(s.layers):
        p = "model.layers.%d." % l
        hn = rms_norm(x, W[p + "input_layernorm.weight"], s.eps)
        a = attention(l, hn)
        if collect is not None:
            collect.append((hn, a))
        if stop_after_attention == l:
            return None
        x = x + a
        x = x + mlp(W, l, rms_norm(x, W[p + "post_attention_layernorm.weight"], s.eps))
    x = rms_norm(x, W["model.norm.weight"], s.eps)
    return F.linear(x, W["lm_head.weight"])


def flop_per_token(s, stage, seq_len):
    """Model FLOPs per token of a distillation step, bench/train_step.py's
    convention: 2 per weight for every product computed (forward; input
    gradient where a gradient flows back; weight gradient of a trained
    weight), attention's score and value products over the causal half,
    their backward twice their forward (recomputed probabilities not counted).
    Stage 1's student attentions read the teacher's hidden states, so no
    gradient leaves them; stage 2's gradient flows down to layer 0's MLA."""
    d, L, h = s.d, s.layers, s.heads
    head, mlp = s.vocab * d, 3 * d * s.inter
    teacher_attention = 2 * d * h * s.head_dim + 2 * d * s.kv_heads * s.head_dim
    q, kv_a = d * h * (s.nope + s.rope), d * (s.rank + s.rope)
    kv_b, o = s.rank * h * (s.nope + s.vdim), h * s.vdim * d
    mla = q + kv_a + kv_b + o
    teacher_core = seq_len * h * 2 * s.head_dim  # 2 x (T / 2) x h x (d_qk + d_v)
    student_core = seq_len * h * (s.nope + s.rope + s.vdim)
    # The MLA layers forward, and backward to their weights.
    attention = 2 * L * mla + L * student_core + 2 * L * mla + 2 * L * student_core
    if stage == "layerwise":
        teacher = 2 * (L * teacher_attention + (L - 1) * mlp) + L * teacher_core
        return teacher + attention + 2 * L * (kv_b + o)
    teacher = 2 * (L * (teacher_attention + mlp) + head) + L * teacher_core
    student_rest = 2 * (L * mlp + head)
    input_gradients = 2 * (head + L * (mlp + kv_b + o) + (L - 1) * (q + kv_a))
    return teacher + attention + student_rest + input_gradients


def make_optimizer(params, lr):
    matrices = [p for p in params if p.dim() >= 2]
    vectors = [p for p in params if p.dim() < 2]
    return torch.optim.AdamW([{"params": matrices, "weight_decay": ADAM["weight_decay"]},
                              {"params": vectors, "weight_decay": 0.0}],
                             lr=lr, betas=ADAM["betas"], eps=ADAM["eps"])


def stage1_loss(s, W, P, tokens):
    pairs = []
    with torch.no_grad():
        forward(s, W, tokens, lambda l, x: teacher_attention(s, W, l, x), collect=pairs,
                stop_after_attention=s.layers - 1)
    terms = [F.mse_loss(mla_attention(s, P, l, hn), a) for l, (hn, a) in enumerate(pairs)]
    return sum(terms) / len(terms)


def stage2_loss(s, W, P, tokens):
    with torch.no_grad():
        teacher = forward(s, W, tokens, lambda l, x: teacher_attention(s, W, l, x))
    student = forward(s, W, tokens, lambda l, x: mla_attention(s, P, l, x))
    V = teacher.shape[-1]
    return F.kl_div(F.log_softmax(student.reshape(-1, V), -1),
                    F.log_softmax(teacher.reshape(-1, V), -1),
                    reduction="batchmean", log_target=True)


def time_torch(loss_fn, s, W, init, lr, batch, seq_len, warmup, steps, per_sequence, seed):
    P = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    params = list(P.values())
    opt = make_optimizer(params, lr)
    gen = torch.Generator().manual_seed(seed)
    vocab = W["model.embed_tokens.weight"].shape[0]
    times, losses = [], []
    for step in range(warmup + steps):
        tokens = torch.randint(0, vocab, (batch, seq_len), generator=gen)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if per_sequence:
            loss = 0.0
            for b in range(batch):
                l = loss_fn(s, W, P, tokens[b:b + 1]) / batch
                l.backward()
                loss += l.item()
        else:
            l = loss_fn(s, W, P, tokens)
            l.backward()
            loss = l.item()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        seconds = time.perf_counter() - start
        losses.append(loss)
        if step >= warmup:
            times.append(seconds)
    return {"tokens_per_s": batch * seq_len / statistics.median(times),
            "step_seconds": times, "loss_first_step": losses[0]}


# ---------------------------------------------------------------------------
# attnedit
# ---------------------------------------------------------------------------

def attnedit_teacher(bindir, tmp, data, env):
    config = os.path.join(tmp, "config.json")
    with open(config, "w") as f:
        json.dump(TEACHER_CONFIG, f)
    recipe = os.path.join(tmp, "teacher_recipe.json")
    with open(recipe, "w") as f:
        json.dump({"seed": 0, "batch": 1, "seq_len": 32, "checkpoint_every": 1000,
                   "stages": [{"stage": "lm", "steps": 1, "lr": 1e-3, "warmup": 1}]}, f)
    teacher = os.path.join(tmp, "teacher")
    run([os.path.join(bindir, "attnedit-run"), "train", "--config", config,
         "--tokenizer", TOKENIZER, "--data", data, "--out", teacher, "--recipe", recipe], env)
    return teacher


def lanes(args):
    """attnedit's recipe lanes: one per core (OpenBLAS threads), at most the batch."""
    return max(1, min(args.threads, args.batch))


def attnedit_distill(bindir, tmp, teacher, data, args, env, round_, backend):
    recipe = os.path.join(tmp, "distill_recipe.json")
    with open(recipe, "w") as f:
        # One lane per core, as bench/train_step.py: each core runs its
        # sequences as one packed call (2 x 512 rows instead of 4 x 256: 4 A/B
        # pairs here gave stage 1 +4.5%, stage 2 +6.5% median, with the
        # recipe's default 4 lanes the slower side).
        json.dump({"seed": 0, "batch": args.batch, "seq_len": args.seq_len,
                   "checkpoint_every": 1000, "lanes": lanes(args),
                   "stages": [{"stage": "layerwise", "steps": args.steps, "lr": 1e-3,
                               "warmup": 1},
                              {"stage": "model", "steps": args.steps, "lr": 3e-4,
                               "warmup": 1}]}, f)
    out = os.path.join(tmp, "student%d-%s" % (round_, backend))
    print("round %d: attnedit-run distill --backend=%s, %d + %d steps of %d x %d tokens ..."
          % (round_ + 1, backend, args.steps, args.steps, args.batch, args.seq_len), flush=True)
    _, wall = run([os.path.join(bindir, "attnedit-run"), "distill", "--teacher", teacher,
                   "--edit", EDIT, "--data", data, "--out", out, "--recipe", recipe,
                   "--backend=" + backend], env)
    with open(os.path.join(out, "training_log.json")) as f:
        log = json.load(f)
    stages = {}
    for stage in log["stages"]:
        points = stage["steps"]
        rates = [p["tokens_per_s"] for p in points]
        stages[stage["stage"]] = {
            "tokens_per_s": statistics.median(rates[2:]),
            "tokens_per_s_all_steps": rates,
            "stage_wall_s": points[-1]["elapsed_s"],
            "loss_first_step": points[0]["loss"],
        }
    stages["distill_command_wall_s"] = wall
    return out, stages


def check_same_model(bindir, s, teacher_dir, student_dir, W, init, env):
    """The PyTorch teacher and initial student against `attnedit-run forward`."""
    tokens = list(range(1, 65))
    t = torch.tensor([tokens])
    result = {}
    for name, module, attention in [
            ("teacher", teacher_dir, lambda l, x: teacher_attention(s, W, l, x)),
            ("student_init", os.path.join(student_dir, "work", "student.mlir"),
             lambda l, x: mla_attention(s, init, l, x))]:
        npy = os.path.join(os.path.dirname(student_dir), name + ".npy")
        run([os.path.join(bindir, "attnedit-run"), "forward", module, "--tokens",
             ",".join(map(str, tokens)), "--logits-out", npy], env)
        theirs = torch.from_numpy(np.load(npy))
        with torch.no_grad():
            ours = forward(s, W, t, attention)[0]
        result[name] = float((ours - theirs).abs().max() / theirs.abs().max())
    return result


def main():
    cli.stop_on_sigterm()
    parser = argparse.ArgumentParser(description=cli.description(__doc__))
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), type=cli.build_dir,
                        help=cli.BUILD_HELP)
    parser.add_argument("--data", default=os.path.join(SHARED, "tinyshakespeare", "input.txt"))
    parser.add_argument("--batch", type=cli.positive_int, default=4)
    parser.add_argument("--seq-len", type=cli.positive_int, default=256)
    parser.add_argument("--steps", type=cli.steps_past_warmup, default=10,
                        help="attnedit steps per stage")
    parser.add_argument("--backends", default="reference,cpu",
                        help="attnedit backends to time, comma-separated (one row each)")
    parser.add_argument("--rounds", type=cli.positive_int, default=2,
                        help="alternating attnedit / PyTorch rounds; each side's best counts")
    parser.add_argument("--torch-warmup", type=cli.non_negative_int, default=2,
                        help="untimed PyTorch steps before the timed ones")
    parser.add_argument("--torch-steps", type=cli.positive_int, default=8)
    parser.add_argument("--threads", type=cli.positive_int, default=len(os.sched_getaffinity(0)),
                        help="OpenBLAS threads of attnedit and torch.set_num_threads "
                             "(default: the usable cores, OpenBLAS's own default)")
    parser.add_argument("--out", help=cli.OUT_HELP)
    args = parser.parse_args()
    unknown = [b for b in args.backends.split(",") if b not in BACKENDS]
    if unknown:
        parser.error("--backends takes a comma-separated list of %s, not %r"
                     % (",".join(BACKENDS), args.backends))
    args.out = args.out or cli.results_path(parser, args, "train_throughput")
    if not os.path.exists(args.data):
        print("train_throughput: skipped, %s is absent" % args.data)
        return
    if cli.torch_absent("train_throughput"):
        return
    global np, torch, F
    import numpy as np
    import torch
    import torch.nn.functional as F
    bindir = os.path.join(args.build, "bin")
    if not os.path.exists(os.path.join(bindir, "attnedit-run")):
        sys.exit("train_throughput: %s is missing; build the project first"
                 % os.path.join(bindir, "attnedit-run"))
    if args.seq_len > TEACHER_CONFIG["max_position_embeddings"]:
        sys.exit("--seq-len must be <= %d" % TEACHER_CONFIG["max_position_embeddings"])

    env = dict(CALLER_ENV, OPENBLAS_NUM_THREADS=str(args.threads))
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    attnedit_rounds, torch_rounds = [], []
    with tempfile.TemporaryDirectory() as tmp:
        teacher_dir = attnedit_teacher(bindir, tmp, args.data, env)
        W = read_safetensors(os.path.join(teacher_dir, "model.safetensors"))
        for v in W.values():
            v.requires_grad_(False)
        backends = args.backends.split(",")
        machines = []
        for round_ in range(args.rounds):
            machines.append(cpu_backend.machine_limits(args.build))
            by_backend = {}
            for backend in backends:
                student_dir, by_backend[backend] = attnedit_distill(
                    bindir, tmp, teacher_dir, args.data, args, env, round_, backend)
            attnedit_rounds.append(by_backend)
            if round_ == 0:
                with open(os.path.join(student_dir, "config.json")) as f:
                    mla_cfg = json.load(f)
                init = {k.split("::")[-1]: v for k, v in read_safetensors(
                    os.path.join(student_dir, "work", "student_init.safetensors")).items()}
                agreement = check_same_model(
                    bindir, Shapes(TEACHER_CONFIG, mla_cfg, max(args.seq_len, 64)),
                    teacher_dir, student_dir, W, init, env)
                s = Shapes(TEACHER_CONFIG, mla_cfg, args.seq_len)
            print("round %d: PyTorch %s, %d steps per stage after %d warm-up steps ..."
                  % (round_ + 1, torch.__version__, args.torch_steps, args.torch_warmup),
                  flush=True)
            rows = {}
            for stage, loss_fn, lr in [("layerwise", stage1_loss, 1e-3),
                                       ("model", stage2_loss, 3e-4)]:
                rows[stage] = {
                    mode: time_torch(loss_fn, s, W, init, lr, args.batch, args.seq_len,
                                     args.torch_warmup, args.torch_steps,
                                     mode == "per_sequence", round_)
                    for mode in ("batched", "per_sequence")}
            torch_rounds.append(rows)
    load_after = os.getloadavg()

    def best(rounds, *keys):
        def get(r):
            for k in keys:
                r = r[k]
            return r
        return max(rounds, key=lambda r: get(r)["tokens_per_s"]) if rounds else None

    attnedit = {b: {st: best(attnedit_rounds, b, st)[b][st] for st in ("layerwise", "model")}
                for b in backends}
    torch_rows = {st: {mode: best(torch_rounds, st, mode)[st][mode]
                       for mode in ("batched", "per_sequence")}
                  for st in ("layerwise", "model")}
    distill_wall = {b: min(r[b]["distill_command_wall_s"] for r in attnedit_rounds)
                    for b in backends}

    teacher_params = sum(v.numel() for v in W.values())
    attn_params = sum(v.numel() for k, v in W.items() if ".self_attn." in k)
    mla_params = sum(v.numel() for v in init.values())
    student_params = teacher_params - attn_params + mla_params

    print()
    print("teacher: Llama, hidden %d, %d layers, %d heads / %d KV heads, MLP %d, vocab %d: "
          "%d parameters" % (s.d, s.layers, s.heads, s.kv_heads,
                             TEACHER_CONFIG["intermediate_size"],
                             TEACHER_CONFIG["vocab_size"], teacher_params))
    print("student: MLA (%s): %d parameters, %d trainable (the MLA attention)"
          % (EDIT, student_params, mla_params))
    print("batch %d x seq_len %d = %d tokens/step; %d threads (attnedit: its packed GEMM; "
          "PyTorch: torch.set_num_threads); f32"
          % (args.batch, args.seq_len, args.batch * args.seq_len, args.threads))
    print("OMP_WAIT_POLICY=%s, OPENBLAS_CORETYPE=%s for PyTorch"
          % (os.environ["OMP_WAIT_POLICY"], os.environ.get("OPENBLAS_CORETYPE", "(OpenBLAS's own)")))
    print("attnedit: one lane per core (%d), its sequences packed in one call, median of steps "
          "3..%d; PyTorch: median of %d steps after %d warm-up; best of %d alternating rounds "
          "per side" % (lanes(args), args.steps, args.torch_steps,
                        args.torch_warmup, args.rounds))
    print("PyTorch vs attnedit forward logits, max relative difference: teacher %.1e, "
          "initial student %.1e" % (agreement["teacher"], agreement["student_init"]))
    print()
    # Best-of-rounds pairs each side's fastest moment; the ratio within each
    # round (the two sides minutes apart) shows how much of it is drift.
    header = ("stage", "attnedit", "tok/s", "PyTorch tok/s", "ratio", "PyTorch 1-seq tok/s",
              "ratio", "ratio per round (median)")
    print("%-16s %-10s %9s %14s %7s %20s %7s  %s" % header)
    table = {}
    names = {"layerwise": "1 (layerwise)", "model": "2 (model KL)"}
    for stage in ("layerwise", "model"):
        b = torch_rows[stage]["batched"]["tokens_per_s"]
        c = torch_rows[stage]["per_sequence"]["tokens_per_s"]
        table[stage] = {"pytorch_batched": torch_rows[stage]["batched"],
                        "pytorch_per_sequence": torch_rows[stage]["per_sequence"]}
        for backend in backends:
            a = attnedit[backend][stage]["tokens_per_s"]
            per_round = [r[backend][stage]["tokens_per_s"] / t[stage]["batched"]["tokens_per_s"]
                         for r, t in zip(attnedit_rounds, torch_rounds)]
            table[stage][backend] = {"attnedit": attnedit[backend][stage],
                                     "ratio_attnedit_over_pytorch": a / b,
                                     "ratio_attnedit_over_pytorch_per_sequence": a / c,
                                     "ratio_per_round": per_round,
                                     "ratio_per_round_median": statistics.median(per_round)}
            print("%-16s %-10s %9.0f %14.0f %7.3f %20.0f %7.3f  %s (%.3f)"
                  % (names[stage], backend, a, b, a / b, c, a / c,
                     ", ".join("%.3f" % x for x in per_round), statistics.median(per_round)))
    # The FMA peak is the highest the rounds measured (the conservative
    # denominator on this VM, whose speed drifts by up to a third).
    machine = cpu_backend.machine_best(machines)
    peak = machine["fma_peak_gflops_all"]
    flop = {stage: flop_per_token(s, stage, args.seq_len) for stage in ("layerwise", "model")}
    print()
    print("%-16s %11s %-10s %9s %7s %15s %7s %16s"
          % ("stage", "MFLOP/token", "attnedit", "GFLOP/s", "% peak", "PyTorch GFLOP/s",
             "% peak", "3x PyTorch needs"))
    for stage in ("layerwise", "model"):
        torch_gflops = torch_rows[stage]["batched"]["tokens_per_s"] * flop[stage] / 1e9
        for backend in backends:
            gflops = attnedit[backend][stage]["tokens_per_s"] * flop[stage] / 1e9
            table[stage][backend]["percent_of_fma_peak"] = 100 * gflops / peak
            print("%-16s %11.1f %-10s %9.1f %6.1f%% %15.1f %6.1f%% %15.1f%%"
                  % (names[stage], flop[stage] / 1e6, backend, gflops, 100 * gflops / peak,
                     torch_gflops, 100 * torch_gflops / peak, 300 * torch_gflops / peak))
        table[stage]["pytorch_batched"]["percent_of_fma_peak"] = 100 * torch_gflops / peak
    print("machine: FMA peak %.0f GFLOP/s (%d threads; the best of the rounds' %s); "
          "sgemm 2048³ %.0f GFLOP/s (OpenBLAS %.0f)"
          % (peak, machines[0]["threads"],
             ", ".join("%.0f" % m["fma_peak_gflops_all"] for m in machines),
             machine["sgemm_2048_gflops"], machine["openblas_sgemm_2048_gflops"]))
    print()
    for backend in backends:
        print("attnedit %s wall (best round): stage 1 %.1f s, stage 2 %.1f s for %d steps each "
              "(whole distill command %.1f s, including editing, JIT and export)"
              % (backend, attnedit[backend]["layerwise"]["stage_wall_s"],
                 attnedit[backend]["model"]["stage_wall_s"], args.steps, distill_wall[backend]))
    print("first-step loss, attnedit (tinyshakespeare) / PyTorch (random ids): stage 1 "
          "%.4g / %.4g, stage 2 %.4g / %.4g"
          % (attnedit[backends[0]]["layerwise"]["loss_first_step"],
             torch_rows["layerwise"]["batched"]["loss_first_step"],
             attnedit[backends[0]]["model"]["loss_first_step"],
             torch_rows["model"]["batched"]["loss_first_step"]))
    print("load average before / after: %.2f / %.2f on %d usable cores%s"
          % (load_before[0], load_after[0], len(os.sched_getaffinity(0)),
             "  (the machine was busy: figures are noisy)"
             if max(load_before[0], load_after[0]) > len(os.sched_getaffinity(0)) + 0.5
             else ""))

    cli.write_json(args.out, {"teacher_config": TEACHER_CONFIG, "edit": EDIT,
                   "teacher_parameters": teacher_params, "student_parameters": student_params,
                   "trainable_parameters": mla_params, "batch": args.batch,
                   "attnedit_lanes": lanes(args),
                   "seq_len": args.seq_len, "threads": args.threads,
                   "attnedit_steps": args.steps, "torch_warmup": args.torch_warmup,
                   "torch_steps": args.torch_steps, "torch_version": torch.__version__,
                   "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
                   "pytorch_batching": "batched = one [batch, seq_len] tensor; per_sequence = "
                                       "one sequence at a time, gradients accumulated",
                   "logits_max_relative_difference": agreement,
                   "flop_per_token": flop, "fma_peak_gflops": peak,
                   "sgemm_2048_gflops": machine["sgemm_2048_gflops"],
                   "machine_rounds": machines,
                   "attnedit_distill_wall_s": distill_wall,
                   "load_average": {"before": load_before, "after": load_after},
                   "rounds": args.rounds, "attnedit_rounds": attnedit_rounds,
                   "pytorch_rounds": torch_rounds, "stages": table})
    print("wrote", args.out)


if __name__ == "__main__":
    main()
