#!/usr/bin/python3
"""Attention-editing figures: KV cache of Qwen3-8B's shape under GQA, MLA and
GateSWA, the time of the whole pass pipeline on that 36-layer module, and how
close the edited-but-untrained stories260K model is to its teacher with MLA
init=random vs init=svd (and GateSWA's exact start).

    bench/edit_attention.py [--build build] [--out bench/results/edit_attention.json]

Needs ../shared/data for the stories260K part (skipped, saying so, without it).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
CONTEXT = 32768


def run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), done.stderr))
    return done


def kv_report(tool, module, pipeline, tmp, name):
    out = os.path.join(tmp, name + ".json")
    passes = pipeline + ["--attnedit-kv-report=context=%d dtype=bf16 json-out=%s" % (CONTEXT, out)]
    start = time.perf_counter()
    run([tool, module, "-o", os.devnull] + passes)
    seconds = time.perf_counter() - start
    with open(out) as f:
        return json.load(f), seconds


def qwen3_8b(build, tmp):
    opt = os.path.join(build, "bin", "attnedit-opt")
    module = os.path.join(tmp, "qwen3-8b.mlir")
    run([os.path.join(build, "bin", "attnedit-import"), "--config-only",
         os.path.join(ROOT, "bench", "configs", "qwen3-8b"), "-o", module])
    raise_ = ["--attnedit-raise-attention"]
    mimo = ",".join(str(l) for l in range(36) if l == 0 or (l + 1) % 6 == 0)
    variants = {
        "gqa": raise_,
        "mla_r512_rope64": raise_ + ["--attnedit-edit-attention=target=mla kv-lora-rank=512 "
                                     "qk-rope-head-dim=64 init=random"],
        "gateswa_w512_full_every6": raise_ + ["--attnedit-edit-attention=target=gate-swa "
                                              "window=512 full-every=6 gate=headwise"],
        "gateswa_w128_mimo_layout": raise_ + ["--attnedit-edit-attention=target=gate-swa "
                                              "window=128 full-layers=%s gate=headwise" % mimo],
    }
    rows = {}
    for name, pipeline in variants.items():
        report, _ = kv_report(opt, module, pipeline, tmp, name)
        rows[name] = report["total"]
        rows[name]["layer0_bytes_per_token"] = report["layers"][0]["bytes_per_token"]
    gqa = rows["gqa"]["bytes_at_context"]
    for r in rows.values():
        r["reduction_vs_gqa"] = 1 - r["bytes_at_context"] / gqa
    # The whole pipeline, parse to print, raise + edit + decompose + report.
    full = raise_ + ["--attnedit-edit-attention=target=mla kv-lora-rank=512 qk-rope-head-dim=64 "
                     "init=random", "--attnedit-decompose"]
    times = []
    for _ in range(3):
        _, seconds = kv_report(opt, module, full, tmp, "timing")
        times.append(seconds)
    return rows, min(times)


def stories260k(build, tmp):
    ckpt = os.path.join(SHARED, "stories260K", "stories260K.bin")
    if not os.path.exists(ckpt):
        print("stories260K: skipped, %s is absent" % ckpt)
        return None
    bindir = os.path.join(build, "bin")
    teacher = os.path.join(tmp, "stories260K.mlir")
    run([os.path.join(bindir, "attnedit-import"), ckpt, "-o", teacher])
    # Held-out text in the model's own domain: stories it samples itself
    # (never used for training), plus the tail of tinyshakespeare.
    stories = os.path.join(tmp, "stories.txt")
    with open(stories, "w") as f:
        for seed in range(8):
            f.write(run([os.path.join(bindir, "attnedit-run"), "generate", ckpt,
                         "--temperature", "1", "--seed", str(seed), "--max-tokens", "256"]).stdout)
    texts = {"teacher_samples": (stories, "0"),
             "tinyshakespeare_tail": (os.path.join(SHARED, "tinyshakespeare", "input.txt"), "0.9")}
    edits = {
        "mla_r16_rope4_random": "target=mla kv-lora-rank=16 qk-rope-head-dim=4 init=random",
        "mla_r16_rope4_svd": "target=mla kv-lora-rank=16 qk-rope-head-dim=4 init=svd",
        "mla_r32_rope4_svd": "target=mla kv-lora-rank=32 qk-rope-head-dim=4 init=svd",
        "gateswa_w1024_exact": "target=gate-swa window=1024 gate=headwise",
        "gateswa_w32": "target=gate-swa window=32 full-every=5 gate=headwise",
    }
    rows = {}
    for name, options in edits.items():
        params = os.path.join(tmp, name + ".safetensors")
        student = os.path.join(tmp, name + ".mlir")
        run([os.path.join(bindir, "attnedit-opt"), teacher, "--attnedit-raise-attention",
             "--attnedit-edit-attention=%s params-out=%s" % (options, params), "-o", student])
        rows[name] = {}
        for text, (path, start) in texts.items():
            out = os.path.join(tmp, name + "." + text + ".json")
            run([os.path.join(bindir, "attnedit-run"), "eval", "--student", student,
                 "--teacher", ckpt, "--data", path, "--data-from", start,
                 "--max-positions", "2048",
                 "--json-out", out])
            with open(out) as f:
                rows[name][text] = json.load(f)
    return rows


def main():
    cli.stop_on_sigterm()
    parser = argparse.ArgumentParser(description=cli.description(__doc__))
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), type=cli.build_dir,
                        help=cli.BUILD_HELP)
    parser.add_argument("--out", help=cli.OUT_HELP)
    args = parser.parse_args()
    args.out = args.out or cli.results_path(parser, args, "edit_attention")
    with tempfile.TemporaryDirectory() as tmp:
        kv, pipeline_seconds = qwen3_8b(args.build, tmp)
        stories = stories260k(args.build, tmp)

    print("Qwen3-8B shape, KV cache at %d tokens, bf16 (whole model)" % CONTEXT)
    print("%-26s %14s %16s %10s" % ("variant", "bytes/token", "bytes@32K", "vs GQA"))
    for name, r in kv.items():
        print("%-26s %14d %16d %9.1f%%" % (name, r["bytes_per_token"], r["bytes_at_context"],
                                            -100 * r["reduction_vs_gqa"]))
    print("MLA layer bytes/token: %d (bound (512 + 64) x 2 = %d)"
          % (kv["mla_r512_rope64"]["layer0_bytes_per_token"], (512 + 64) * 2))
    print("pass pipeline on the 36-layer module (parse, raise, edit MLA, decompose, "
          "kv-report, print): %.3f s (target < 2 s)" % pipeline_seconds)
    if stories:
        print("\nstories260K edited, untrained, vs its teacher (2048 held-out positions)")
        print("%-24s %-22s %10s %8s %10s" % ("student", "text", "KL nats", "top-1", "ppl"))
        for name, per_text in stories.items():
            for text, r in per_text.items():
                print("%-24s %-22s %10.4f %8.3f %10.2f (teacher %.2f)"
                      % (name, text, r["kl_teacher_student"], r["top1_agreement"],
                         r["student_perplexity"], r["teacher_perplexity"]))
    cli.write_json(args.out, {"qwen3_8b_kv": kv, "pipeline_seconds": pipeline_seconds,
                              "stories260k": stories})
    print("\nwrote", args.out)


if __name__ == "__main__":
    main()
