#!/usr/bin/python3
"""Inference figures: the KV cache and the serving path.

1. Decode on stories260K (greedy, 2 threads' worth of machine): cached
   (prefill + decode over the paged KV cache) vs uncached (the whole prefix
   recomputed per token), beside llama.cpp's figures on this machine.
2. Serving on stories260K and its MLA / GateSWA warm starts (convert, no
   training; GateSWA: window 32, layer 4 of 5 full): TTFT, inter-token
   latency, decode tok/s, peak KV at concurrency 1, 8 and 32.
3. KV bytes against context: measured in the pool on stories260K's three
   variants (real prefill up to 2K tokens; the pool's block walk without model
   calls beyond, --kv-only), and computed for a Qwen3-8B-shaped config by
   --attnedit-kv-report (bf16), GQA vs MLA (512 + 64) vs GateSWA (W 512,
   every 6th layer full).

4. With --large: a ~90M-parameter Llama (bench/configs/llama-90m.json: d 768,
   12 layers, 12 query / 4 KV heads; one training step from random weights,
   which is all a speed figure needs) and its MLA (r128 + rope 32) and
   GateSWA (W 128, every 4th layer full) warm starts, prompt 256: decode
   tok/s and TTFT at concurrency 1, 8 and 32, and uncached decode.

    bench/serve.py [--build build] [--out bench/results/serve.json] [--quick] [--large]

Writes the JSON, a markdown table on stdout and an SVG plot beside the JSON.
Needs ../shared/data/stories260K (exits saying so without it).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
# llama.cpp on this machine, stories260K, 2 threads (issue 11).
LLAMA_CPP = {"decode_tok_s": 4500, "prompt_tok_s": 23500}

EDITS = {
    "gqa": None,
    "mla": "target=mla kv-lora-rank=16 qk-rope-head-dim=4 init=svd",
    "gateswa": "target=gate-swa window=32 full-every=5",
}


def run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), done.stderr))
    return done


def bench_serve(tool, model, tmp, *args):
    out = os.path.join(tmp, "bench.json")
    run([tool, "bench-serve", model, "--json-out", out] + [str(a) for a in args])
    with open(out) as f:
        return json.load(f)


def long_context(tool, model, tmp, name):
    """An .mlir of `model` whose context is 32K: the memory walk and real
    prefill past the 512 tokens stories260K was trained on (quality there is
    irrelevant to bytes)."""
    module = os.path.join(tmp, name + ".mlir")
    src = model if model.endswith(".mlir") else None
    if src is None:
        run([os.path.join(os.path.dirname(tool), "attnedit-import"), model, "-o", module])
    else:
        module = src
    with open(module) as f:
        text = f.read()
    out = os.path.join(tmp, name + "-32k.mlir")
    with open(out, "w") as f:
        f.write(text.replace("attnedit.max_positions = 512", "attnedit.max_positions = 40000"))
    return out


def qwen3_8b_kv(build, tmp, contexts):
    opt = os.path.join(build, "bin", "attnedit-opt")
    module = os.path.join(tmp, "qwen3-8b.mlir")
    run([os.path.join(build, "bin", "attnedit-import"), "--config-only",
         os.path.join(ROOT, "bench", "configs", "qwen3-8b"), "-o", module])
    variants = {
        "gqa": [],
        "mla": ["--attnedit-edit-attention=target=mla kv-lora-rank=512 qk-rope-head-dim=64 "
                "init=random"],
        "gateswa": ["--attnedit-edit-attention=target=gate-swa window=512 full-every=6"],
    }
    rows = {}
    for name, edit in variants.items():
        rows[name] = {}
        for context in contexts:
            out = os.path.join(tmp, "kv-%s-%d.json" % (name, context))
            run([opt, module, "-o", os.devnull, "--attnedit-raise-attention"] + edit +
                ["--attnedit-kv-report=context=%d dtype=bf16 json-out=%s" % (context, out)])
            with open(out) as f:
                rows[name][context] = json.load(f)["total"]["bytes_at_context"]
    return rows


def large_model(tool, tmp, stories):
    """Serving figures of a ~90M-parameter model and its two conversions."""
    teacher = os.path.join(tmp, "llama-90m")
    recipe = os.path.join(tmp, "one-step.json")
    with open(recipe, "w") as f:
        json.dump({"batch": 2, "seq_len": 64, "stages": [{"stage": "lm", "steps": 1}]}, f)
    text = os.path.join(SHARED, "tinyshakespeare", "input.txt")
    run([tool, "train", "--config", os.path.join(ROOT, "bench", "configs", "llama-90m.json"),
         "--tokenizer", os.path.join(os.path.dirname(stories), "tok512.bin"), "--data", text,
         "--out", teacher, "--recipe", recipe])
    models = {"gqa": teacher}
    for name, edit in (("mla", "target=mla kv-lora-rank=128 qk-rope-head-dim=32 init=svd"),
                       ("gateswa", "target=gate-swa window=128 full-every=4")):
        out = os.path.join(tmp, "large-" + name)
        run([tool, "convert", "--teacher", teacher, "--edit", edit, "--out", out])
        models[name] = out
    rows = {}
    for name, model in models.items():
        rows[name] = {}
        for c in (1, 8, 32):
            extra = ["--uncached-tokens", 8] if c == 1 else []
            rows[name][c] = bench_serve(tool, model, tmp, "--concurrency", c, "--prompt-len", 256,
                                        "--gen-len", 32, *extra)
    return rows


def svg_plot(path, series, title):
    """KV bytes against context, log-log, one line per variant."""
    import math
    w, h, pad = 640, 400, 60
    xs = sorted({x for s in series.values() for x in s})
    ys = [y for s in series.values() for y in s.values() if y > 0]
    lx = lambda x: pad + (math.log2(x) - math.log2(xs[0])) / max(1e-9, math.log2(xs[-1]) - math.log2(xs[0])) * (w - 2 * pad)
    ymin, ymax = math.log10(min(ys)), math.log10(max(ys))
    ly = lambda y: h - pad - (math.log10(y) - ymin) / max(1e-9, ymax - ymin) * (h - 2 * pad)
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (w, h),
             '<rect width="100%" height="100%" fill="white"/>',
             '<text x="%d" y="20" font-size="14">%s</text>' % (pad, title)]
    for x in xs:
        parts.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (lx(x), h - pad + 18, "%dK" % (x // 1024) if x >= 1024 else x))
    for e in range(math.floor(ymin), math.ceil(ymax) + 1):
        if ymin <= e <= ymax:
            parts.append('<text x="%d" y="%.1f" text-anchor="end">1e%d B</text>' % (pad - 5, ly(10 ** e) + 4, e))
    for i, (name, s) in enumerate(sorted(series.items())):
        pts = " ".join("%.1f,%.1f" % (lx(x), ly(y)) for x, y in sorted(s.items()) if y > 0)
        parts.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (colors[i % len(colors)], pts))
        parts.append('<text x="%d" y="%d" fill="%s">%s</text>' % (w - pad - 150, pad + 16 * i, colors[i % len(colors)], name))
    parts.append('<text x="%d" y="%d" text-anchor="middle">context (tokens)</text>' % (w // 2, h - 15))
    parts.append("</svg>")
    cli.write_text(path, "\n".join(parts))


def main():
    cli.stop_on_sigterm()
    ap = argparse.ArgumentParser(description=cli.description(__doc__))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), type=cli.build_dir,
                    help=cli.BUILD_HELP)
    ap.add_argument("--out", help=cli.OUT_HELP)
    ap.add_argument("--quick", action="store_true", help="fewer tokens (a smoke run)")
    ap.add_argument("--large", action="store_true", help="also the ~90M-parameter model")
    args = ap.parse_args()
    tool = os.path.join(args.build, "bin", "attnedit-run")
    stories = os.path.join(SHARED, "stories260K", "stories260K.bin")
    if not os.path.exists(stories):
        sys.exit("bench/serve.py: %s is absent" % stories)
    args.out = args.out or cli.results_path(ap, args, "serve")
    gen = 64 if args.quick else 256
    results = {"llama_cpp": LLAMA_CPP}

    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for name, edit in EDITS.items():
            if edit is None:
                models[name] = stories
                continue
            out = os.path.join(tmp, name)
            run([tool, "convert", "--teacher", stories, "--edit", edit, "--out", out])
            models[name] = out

        # 1 + 2: decode and serving.
        serving = {}
        for name, model in models.items():
            serving[name] = {}
            for c in (1, 8, 32):
                extra = ["--uncached-tokens", 32 if args.quick else 64] if c == 1 else []
                serving[name][c] = bench_serve(tool, model, tmp, "--concurrency", c,
                                               "--prompt-len", 128, "--gen-len", gen, *extra)
        results["serving"] = serving

        # 3: KV bytes against context.
        measured, walked = {}, {}
        real = [512, 1024] if args.quick else [512, 1024, 2048]
        contexts = [1024, 2048, 4096, 8192, 16384, 32768]
        for name, model in models.items():
            long_model = long_context(tool, model, tmp, name)
            measured[name] = {n: bench_serve(tool, long_model, tmp, "--prompt-len", n,
                                             "--gen-len", 1)["peak_kv_bytes"]
                              for n in real}
            walked[name] = {n: bench_serve(tool, long_model, tmp, "--prompt-len", n, "--gen-len",
                                           1, "--kv-only")["peak_kv_bytes"]
                            for n in contexts}
        results["kv_measured_stories260K"] = measured
        results["kv_pool_walk_stories260K"] = walked
        results["kv_computed_qwen3_8b_bf16"] = qwen3_8b_kv(args.build, tmp, contexts)
        if args.large:
            results["large"] = large_model(tool, tmp, stories)

    cli.write_json(args.out, results)
    svg = os.path.splitext(args.out)[0] + "_kv.svg"
    series = {"stories260K %s (pool)" % k: v for k, v in results["kv_pool_walk_stories260K"].items()}
    series.update({"Qwen3-8B %s (bf16)" % k: v for k, v in results["kv_computed_qwen3_8b_bf16"].items()})
    svg_plot(svg, series, "KV-cache bytes against context")

    print("## Decode, stories260K, prompt 128, greedy (llama.cpp: %d decode tok/s, %d prompt tok/s)"
          % (LLAMA_CPP["decode_tok_s"], LLAMA_CPP["prompt_tok_s"]))
    print("| model | C | TTFT ms | ITL ms | prompt tok/s | decode tok/s | uncached tok/s | peak KV KiB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in serving.items():
        for c, r in runs.items():
            print("| %s | %d | %.1f | %.2f | %.0f | %.0f | %s | %.0f |" % (
                name, c, r["ttft_mean_s"] * 1e3, r["itl_mean_s"] * 1e3, r["prompt_tok_s"],
                r["decode_tok_s"], "%.1f" % r["uncached_decode_tok_s"] if c == 1 else "",
                r["peak_kv_bytes"] / 1024))
    print("\n## KV bytes against context")
    print("| variant | " + " | ".join("%d" % n for n in contexts) + " |")
    print("|---|" + "---|" * len(contexts))
    for label, table in (("stories260K pool", walked), ("Qwen3-8B bf16", results["kv_computed_qwen3_8b_bf16"])):
        for name, row in table.items():
            print("| %s %s | " % (label, name) + " | ".join("%.2f MiB" % (row[n] / 1048576) for n in contexts) + " |")
    print("\nmeasured by real prefill (stories260K): " + json.dumps(measured))
    if "large" in results:
        print("\n## ~90M-parameter Llama, prompt 256, 32 greedy tokens")
        print("| model | C | TTFT ms | decode tok/s | uncached tok/s | peak KV MiB |")
        print("|---|---|---|---|---|---|")
        for name, runs in results["large"].items():
            for c, r in runs.items():
                print("| %s | %d | %.0f | %.1f | %s | %.1f |" % (
                    name, c, r["ttft_mean_s"] * 1e3, r["decode_tok_s"],
                    "%.2f" % r["uncached_decode_tok_s"] if c == 1 else "",
                    r["peak_kv_bytes"] / 1048576))
    print("wrote %s and %s" % (args.out, svg))


if __name__ == "__main__":
    main()
