#!/usr/bin/python3
"""Distillation on real models, with the ablations the paper lacks.

A. The pretrained TinyStories model (../shared/data/stories260K): the
   distillation data is sampled from the teacher itself (temperature 1,
   seed 0, through the independent PyTorch implementation in
   tests/e2e/torch_reference.py, whose logits match ours to 1e-6), the held-out
   text with seed 1. MLA and GateSWA students with stage 1 + stage 2;
   then, for MLA, stage 2 only at the same total steps, and init=random.
B. A larger teacher pretrained from scratch on ../shared/data/tinyshakespeare
   by `attnedit-run train` (the same trainer, next-token loss), then MLA and
   GateSWA students distilled on the first 90% and evaluated on the tail.

Every run goes through the CLI. Prints a table and writes
bench/results/distill_real.json (distill_real-quick.json with --quick).
A part whose files are absent is skipped, saying which; part A also needs
python3-torch (it samples through the PyTorch reference).

usage: bench/distill_real.py [--build build] [--work DIR] [--quick] [--part a|b|both]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# For tests/e2e/torch_reference.py, imported where PyTorch is needed (part
# A's sampling), so that part B and --help run without it.
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import cli  # noqa: E402  (bench/cli.py: the shared argument types)

SHARED = os.path.join(ROOT, "..", "shared", "data")
STORIES = os.path.join(SHARED, "stories260K", "stories260K.bin")
STORIES_TOKENIZER = os.path.join(SHARED, "stories260K", "tok512.bin")
SHAKESPEARE = os.path.join(SHARED, "tinyshakespeare", "input.txt")
SHAKESPEARE_CONFIG = os.path.join(HERE, "configs", "shakespeare-teacher.json")
SHAKESPEARE_TOKENIZER = os.path.join(ROOT, "scripts", "data", "stories260K", "tok512.bin")


def sample_stories(m, count, seed, max_tokens):
    """`count` stories sampled at temperature 1 from BOS, each cut before the
    BOS that ends it, as token ids (BOS first). Decodes with a KV cache over
    the reference model's weights (llama2.c: interleaved RoPE, GQA)."""
    import torch
    import torch_reference as ref
    # stories260K's matrices are 64 wide: more threads would only synchronise.
    torch.set_num_threads(1)
    w, group = m.w, m.n_heads // m.n_kv_heads
    g = torch.Generator().manual_seed(seed)
    ids = torch.ones(count, 1, dtype=torch.long)
    cache = [([], []) for _ in range(m.n_layers)]
    for pos in range(max_tokens):
        x = w["model.embed_tokens.weight"][ids[:, -1]]
        angle = pos * m.inv_freq.float()
        cos, sin = angle.cos()[None, None, :], angle.sin()[None, None, :]
        for l in range(m.n_layers):
            p = f"model.layers.{l}."
            h = ref.rmsnorm(x, w[p + "input_layernorm.weight"], m.eps)
            q = (h @ w[p + "self_attn.q_proj.weight"].T).view(count, m.n_heads, m.head_dim)
            k = (h @ w[p + "self_attn.k_proj.weight"].T).view(count, m.n_kv_heads, m.head_dim)
            v = (h @ w[p + "self_attn.v_proj.weight"].T).view(count, m.n_kv_heads, m.head_dim)
            q, k = ref.apply_rope(q, cos, sin, True), ref.apply_rope(k, cos, sin, True)
            cache[l][0].append(k.repeat_interleave(group, 1))
            cache[l][1].append(v.repeat_interleave(group, 1))
            keys, values = torch.stack(cache[l][0], 2), torch.stack(cache[l][1], 2)
            att = (torch.einsum("bhd,bhsd->bhs", q, keys) / m.head_dim ** 0.5).softmax(-1)
            o = torch.einsum("bhs,bhsd->bhd", att, values).reshape(count, -1)
            x = x + o @ w[p + "self_attn.o_proj.weight"].T
            h = ref.rmsnorm(x, w[p + "post_attention_layernorm.weight"], m.eps)
            gate = torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T)
            x = x + (gate * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
        logits = ref.rmsnorm(x, w["model.norm.weight"], m.eps) @ m.lm_head.T
        ids = torch.cat([ids, torch.multinomial(logits.softmax(-1), 1, generator=g)], 1)
    stories = []
    for row in ids.tolist():
        end = row.index(1, 1) if 1 in row[1:] else len(row)
        stories.append(row[:end])
    return stories


def recipe(path, stages, seed=0, batch=8, seq_len=128):
    with open(path, "w") as f:
        json.dump({"seed": seed, "batch": batch, "seq_len": seq_len, "checkpoint_every": 100,
                   "stages": stages}, f)
    return path


def layerwise(steps, lr=3e-3):
    return {"stage": "layerwise", "steps": steps, "lr": lr, "warmup": max(1, steps // 20)}


def model_stage(steps, lr=1e-3):
    return {"stage": "model", "steps": steps, "lr": lr, "warmup": max(1, steps // 20)}


def distill_and_eval(args, name, teacher, edit, data, stages, heldout, data_from, rows, work,
                     eval_window=256):
    out = os.path.join(work, name)
    subprocess.run(["rm", "-rf", out])
    tool = os.path.join(args.build, "bin", "attnedit-run")
    seconds = cli.run_logged([tool, "distill", "--teacher", teacher, "--edit", edit,
                              "--data", data, "--out", out,
                              "--recipe", recipe(out + ".recipe.json", stages)], out + ".log")
    report = out + ".eval.json"
    cli.run_logged([tool, "eval", "--teacher", teacher, "--student", out, "--data", heldout,
                    "--data-from", str(data_from), "--max-positions", "4096",
                    "--window", str(eval_window), "--json-out", report], out + ".eval.log")
    with open(report) as f:
        r = json.load(f)
    row = {"run": name, "edit": edit, "stages": [f"{s['stage']}:{s['steps']}" for s in stages],
           "ppl_teacher": r["teacher_perplexity"], "ppl_student": r["student_perplexity"],
           "ppl_ratio": r["student_perplexity"] / r["teacher_perplexity"],
           "kl": r["kl_teacher_student"], "top1": r["top1_agreement"],
           "kv_teacher": r["teacher_kv_bytes_per_token"],
           "kv_student": r["student_kv_bytes_per_token"], "kv_context": r["kv_context"],
           "kv_teacher_at_context": r["teacher_kv_bytes_at_context"],
           "kv_student_at_context": r["student_kv_bytes_at_context"], "seconds": seconds,
           "positions": r["positions"]}
    rows.append(row)
    print(f"{name:28s} ppl {row['ppl_teacher']:.3f} -> {row['ppl_student']:.3f} "
          f"(x{row['ppl_ratio']:.3f})  KL {row['kl']:.4f}  top1 {row['top1']:.3f}  "
          f"KV {row['kv_teacher']:.1f} -> {row['kv_student']:.1f} B/tok, "
          f"{row['kv_teacher_at_context']} -> {row['kv_student_at_context']} B at "
          f"{row['kv_context']} tok  {seconds:.0f} s", flush=True)


def part_a(args, rows, work):
    import torch_reference as ref
    teacher = STORIES
    model = ref.load_model(teacher)
    # Sampling needs speed, not float64: f32 logits differ from ours by ~1e-6.
    model.w = {k: v.float() for k, v in model.w.items()}
    model.lm_head = model.lm_head.float()
    vocab = ref.read_llama2c_tokenizer(STORIES_TOKENIZER, 512)
    n_train, n_held = (40, 8) if args.quick else (400, 40)
    t0 = time.time()
    train = sample_stories(model, n_train, 0, 256)
    held = sample_stories(model, n_held, 1, 256)
    data = os.path.join(work, "stories_sampled.bin")
    with open(data, "wb") as f:
        for ids in train:
            f.write(struct.pack(f"<{len(ids)}H", *ids))
    heldout = os.path.join(work, "stories_heldout.txt")
    with open(heldout, "w") as f:
        f.write("\n".join(ref.decode(vocab, ids[1:]) for ids in held))
    print(f"stories260K: sampled {sum(map(len, train))} training tokens and {n_held} held-out "
          f"stories in {time.time() - t0:.0f} s", flush=True)

    s1, s2 = (20, 20) if args.quick else (300, 300)
    mla = "target=mla kv-lora-rank=16 qk-rope-head-dim=4 init=svd"
    swa = "target=gate-swa window=32 full-every=2 gate=headwise sinks=true"
    common = dict(args=args, teacher=teacher, data=data, heldout=heldout, data_from=0.0,
                  rows=rows, work=work)
    distill_and_eval(name="stories260K MLA s1+s2", edit=mla,
                     stages=[layerwise(s1), model_stage(s2)], **common)
    distill_and_eval(name="stories260K GateSWA s1+s2", edit=swa,
                     stages=[layerwise(s1), model_stage(s2)], **common)
    distill_and_eval(name="stories260K MLA s2 only", edit=mla,
                     stages=[model_stage(s1 + s2)], **common)
    distill_and_eval(name="stories260K MLA random s1+s2",
                     edit=mla.replace("init=svd", "init=random"),
                     stages=[layerwise(s1), model_stage(s2)], **common)


def part_b(args, rows, work):
    text, config = SHAKESPEARE, SHAKESPEARE_CONFIG
    teacher = os.path.join(work, "shakespeare_teacher")
    steps = 60 if args.quick else 2000
    subprocess.run(["rm", "-rf", teacher])
    seconds = cli.run_logged(
        [os.path.join(args.build, "bin", "attnedit-run"), "train", "--config", config,
         "--tokenizer", SHAKESPEARE_TOKENIZER, "--data", text, "--out", teacher,
         "--recipe", recipe(teacher + ".recipe.json",
                            [{"stage": "lm", "steps": steps, "lr": 2e-3,
                              "warmup": steps // 20, "weight_decay": 0.1}],
                            batch=8, seq_len=128)], teacher + ".log")
    with open(os.path.join(teacher, "training_log.json")) as f:
        last = json.load(f)["stages"][0]["steps"][-1]
    print(f"shakespeare teacher: {steps} steps in {seconds:.0f} s, final train loss "
          f"{last['loss']:.3f}", flush=True)
    rows.append({"run": "shakespeare teacher (train)", "steps": steps, "seconds": seconds,
                 "final_loss": last["loss"]})
    s1, s2 = (20, 20) if args.quick else (300, 300)
    # Evaluated in windows of the length the teacher was trained on: past it
    # the from-scratch teacher's RoPE extrapolates badly, which would flatter
    # the students.
    common = dict(args=args, teacher=teacher, data=text, heldout=text, data_from=0.9,
                  rows=rows, work=work, eval_window=128)
    distill_and_eval(name="shakespeare MLA s1+s2",
                     edit="target=mla kv-lora-rank=32 qk-rope-head-dim=8 init=svd",
                     stages=[layerwise(s1), model_stage(s2)], **common)
    distill_and_eval(name="shakespeare GateSWA s1+s2",
                     edit="target=gate-swa window=32 full-every=2 gate=headwise sinks=true",
                     stages=[layerwise(s1), model_stage(s2)], **common)


def main():
    cli.stop_on_sigterm()
    p = argparse.ArgumentParser(description=cli.description(__doc__))
    p.add_argument("--build", default=os.path.join(ROOT, "build"), type=cli.build_dir,
                   help=cli.BUILD_HELP)
    p.add_argument("--work", default=os.path.join(ROOT, "build", "bench-distill"),
                   help="directory for the sampled data, models and logs, kept after the run "
                        "(default: build/bench-distill)")
    p.add_argument("--quick", action="store_true", help="tiny step counts, to check the script")
    p.add_argument("--part", choices=["a", "b", "both"], default="both",
                   help="A (stories260K), B (tinyshakespeare teacher) or both")
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    rows = []
    start = time.time()
    for part, run_part, needs in (("a", part_a, [STORIES, STORIES_TOKENIZER]),
                                  ("b", part_b, [SHAKESPEARE, SHAKESPEARE_CONFIG,
                                                 SHAKESPEARE_TOKENIZER])):
        if args.part not in (part, "both"):
            continue
        absent = [path for path in needs if not os.path.exists(path)]
        if absent:
            print(f"part {part.upper()}: skipped, {absent[0]} is absent")
        elif not (part == "a" and cli.torch_absent("part A")):
            run_part(args, rows, args.work)
    if not rows:
        return
    out = cli.results_path(p, args, "distill_real")
    cli.write_json(out, {"rows": rows, "total_seconds": time.time() - start})
    print(f"\n{'run':30s} {'ppl t':>7s} {'ppl s':>7s} {'ratio':>6s} {'KL':>7s} {'top1':>6s} "
          f"{'KV t':>5s} {'KV s':>5s} {'KV s@ctx':>9s} {'sec':>6s}")
    for r in rows:
        if "ppl_ratio" in r:
            print(f"{r['run']:30s} {r['ppl_teacher']:7.3f} {r['ppl_student']:7.3f} "
                  f"{r['ppl_ratio']:6.3f} {r['kl']:7.4f} {r['top1']:6.3f} {r['kv_teacher']:5.0f} "
                  f"{r['kv_student']:5.0f} "
                  f"{r['kv_student_at_context'] / r['kv_teacher_at_context']:9.3f} "
                  f"{r['seconds']:6.0f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
