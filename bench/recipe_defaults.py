#!/usr/bin/python3
"""The sweep behind `attnedit-run distill`'s default learning rates.

stories260K (../shared/data) is distilled into an MLA student (rank 16, rope
4, SVD init) with the default recipe's shape (stage 1 layer-wise MSE, then
stage 2 KL, 200 + 200 steps of 8 x 128 tokens, warm-up steps/20) for each
(stage-1 lr, stage-2 lr) pair; a GateSWA student (window 32, every second
layer full, head-wise gates, sinks) then runs with the current defaults and
with the pair that was best for MLA. Data and held-out text are those of
bench/distill_real.py (stories sampled from the teacher, seeds 0 and 1).
The score is the held-out perplexity ratio student / teacher from
`attnedit-run eval` (lower is better; 1 is the teacher).

Runs are started while the time budget lasts (the machine is shared; the
budget counts from after the data, which is sampled once per work dir), so a
short budget gives a partial table; it says which runs it skipped.
Prints a table and writes bench/results/recipe_defaults.json.

usage: bench/recipe_defaults.py [--build build] [--work DIR] [--steps 200]
                                [--budget-seconds 840]
"""
import argparse
import os
import struct
import time

import distill_real as dr  # noqa: E402  (sampling, distill + eval through the CLI)
import cli  # noqa: E402  (bench/cli.py: the shared argument types)

PAIRS = [(1e-3, 3e-4), (3e-3, 1e-3), (1e-2, 3e-3), (3e-3, 3e-4), (1e-2, 1e-3), (3e-3, 3e-3)]
CURRENT = (1e-3, 3e-4)  # the defaults in tools/attnedit-run when this sweep was written
MLA = "target=mla kv-lora-rank=16 qk-rope-head-dim=4 init=svd"
SWA = "target=gate-swa window=32 full-every=2 gate=headwise sinks=true"


def data_files(work):
    """The sampled training ids and held-out text, made once per work dir;
    None, having said so, when making them needs PyTorch and it is absent."""
    data = os.path.join(work, "stories_sampled.bin")
    heldout = os.path.join(work, "stories_heldout.txt")
    if os.path.exists(data) and os.path.exists(heldout):
        return data, heldout
    if cli.torch_absent("recipe_defaults"):
        return None
    import torch_reference as ref  # on the path distill_real set
    model = ref.load_model(dr.STORIES)
    model.w = {k: v.float() for k, v in model.w.items()}
    model.lm_head = model.lm_head.float()
    vocab = ref.read_llama2c_tokenizer(dr.STORIES_TOKENIZER, 512)
    t0 = time.time()
    train = dr.sample_stories(model, 400, 0, 256)
    held = dr.sample_stories(model, 40, 1, 256)
    with open(data + ".tmp", "wb") as f:
        for ids in train:
            f.write(struct.pack(f"<{len(ids)}H", *ids))
    with open(heldout, "w") as f:
        f.write("\n".join(ref.decode(vocab, ids[1:]) for ids in held))
    os.rename(data + ".tmp", data)
    print(f"sampled {sum(map(len, train))} training tokens and 40 held-out stories in "
          f"{time.time() - t0:.0f} s", flush=True)
    return data, heldout


def main():
    cli.stop_on_sigterm()
    p = argparse.ArgumentParser(description=cli.description(__doc__))
    p.add_argument("--build", default=os.path.join(dr.ROOT, "build"), type=cli.build_dir,
                   help=cli.BUILD_HELP)
    p.add_argument("--work", default=os.path.join(dr.ROOT, "build", "bench-recipe-defaults"),
                   help="directory for the sampled data (made once, then reused), students "
                        "and logs (default: build/bench-recipe-defaults)")
    p.add_argument("--steps", type=cli.positive_int, default=200, help="steps per stage (the default recipe's)")
    p.add_argument("--budget-seconds", type=float, default=840,
                   help="start no run after this much wall time")
    args = p.parse_args()
    if not os.path.isdir(dr.SHARED):
        print(f"skipped: {dr.SHARED} is absent (the real model lives there)")
        return
    os.makedirs(args.work, exist_ok=True)
    files = data_files(args.work)
    if files is None:
        return
    data, heldout = files
    start = time.time()  # the budget is for the runs; sampling happens once per work dir
    teacher = dr.STORIES
    rows, skipped = [], []

    def run(edit_name, edit, pair):
        name = f"{edit_name}_lr{pair[0]:g}_{pair[1]:g}"
        if time.time() - start > args.budget_seconds:
            skipped.append(name)
            return
        stages = [dr.layerwise(args.steps, pair[0]), dr.model_stage(args.steps, pair[1])]
        dr.distill_and_eval(args, name, teacher, edit, data, stages, heldout, 0.0, rows,
                            args.work)
        rows[-1].update({"edit_name": edit_name, "lr_stage1": pair[0], "lr_stage2": pair[1]})

    for pair in PAIRS:
        run("MLA", MLA, pair)
    mla = [r for r in rows if r["edit_name"] == "MLA"]
    best = min(mla, key=lambda r: r["ppl_ratio"]) if mla else None
    best_pair = (best["lr_stage1"], best["lr_stage2"]) if best else CURRENT
    for pair in dict.fromkeys([CURRENT, best_pair]):
        run("GateSWA", SWA, pair)

    out = cli.results_path(p, args, "recipe_defaults")
    cli.write_json(out, {"steps_per_stage": args.steps, "rows": rows, "skipped": skipped,
                         "best_mla_pair": best_pair, "total_seconds": time.time() - start})
    print(f"\n{'edit':8s} {'lr s1':>7s} {'lr s2':>7s} {'ppl t':>7s} {'ppl s':>7s} {'ratio':>6s} "
          f"{'KL':>7s} {'top1':>6s} {'sec':>5s}")
    for r in rows:
        mark = "  (current defaults)" if (r["lr_stage1"], r["lr_stage2"]) == CURRENT else ""
        print(f"{r['edit_name']:8s} {r['lr_stage1']:7g} {r['lr_stage2']:7g} "
              f"{r['ppl_teacher']:7.3f} {r['ppl_student']:7.3f} {r['ppl_ratio']:6.3f} "
              f"{r['kl']:7.4f} {r['top1']:6.3f} {r['seconds']:5.0f}{mark}")
    for name in skipped:
        print(f"skipped (over the {args.budget_seconds:.0f} s budget): {name}")
    print(f"best MLA pair: {best_pair[0]:g} / {best_pair[1]:g}; wrote {out}")


if __name__ == "__main__":
    main()
