"""Whole-model gradients of the distillation loss against PyTorch autograd.

For a tiny Llama-style and a Qwen3-style model, the teacher is one random
checkpoint and the student another of the same shape. attnedit builds
KL(teacher || student) over next-token distributions (--attnedit-build-distill
stage=model train=all), differentiates it (--attnedit-autodiff) and evaluates
the gradient of every student parameter; torch_reference.py's independent
float64 forward, under autograd, gives the reference. Exits 77 (skip) when
torch is absent.

    test_grad_parity.py --bin-dir build/bin --work-dir DIR
"""
import argparse
import os
import re
import subprocess
import sys

try:
    import numpy as np
    import torch
except ImportError as e:
    print("skipped: %s (Debian's python3-torch / python3-numpy are needed)" % e)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_models  # noqa: E402
import torch_reference as ref  # noqa: E402

TOKENS = [3, 17, 5, 42, 8, 8, 29, 1, 60, 11]
TOLERANCE = 1e-4


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.exit("FAILED: %s\n%s%s" % (" ".join(cmd), done.stdout, done.stderr))
    return done.stdout


def write_model(path, name, seed):
    _, config, _, _, _ = make_models.HF_MODELS[name]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim", config["hidden_size"] // heads)
    weights = make_models.random_weights(
        seed, config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"],
        heads, config["num_key_value_heads"], head_dim, config["vocab_size"],
        config["tie_word_embeddings"], qk_norm=config["model_type"] == "qwen3")
    make_models.write_hf(path, dict(config), weights, "float32")
    return path


def reference_grads(teacher_dir, student_dir):
    teacher, student = ref.load_model(teacher_dir), ref.load_model(student_dir)
    for tensor in student.w.values():
        tensor.requires_grad_(True)
    if "lm_head.weight" not in student.w:
        student.lm_head = student.w["model.embed_tokens.weight"]
    with torch.no_grad():
        p = ref.forward(teacher, TOKENS).log_softmax(-1)
    q = ref.forward(student, TOKENS).log_softmax(-1)
    loss = (p.exp() * (p - q)).sum(-1).mean()
    loss.backward()
    return loss.item(), {name: t.grad.numpy() for name, t in student.w.items()}


def check(name, bin_dir, work):
    teacher_dir = write_model(os.path.join(work, name + "_teacher"), name, 101)
    student_dir = write_model(os.path.join(work, name + "_student"), name, 202)
    teacher = os.path.join(work, name + "_teacher.mlir")
    run([os.path.join(bin_dir, "attnedit-import"), teacher_dir, "-o", teacher])
    run([os.path.join(bin_dir, "attnedit-opt"), teacher, "--attnedit-raise-attention",
         "-o", teacher])
    step = os.path.join(work, name + "_step.mlir")
    run([os.path.join(bin_dir, "attnedit-opt"), teacher,
         "--attnedit-build-distill=teacher=%s stage=model train=all" % teacher,
         "--attnedit-autodiff=func=train_step", "-o", step])
    # The student's parameters (scope "student") are the second checkpoint.
    with open(step) as f:
        text = f.read()
    scopes = 'attnedit.parameter_scopes = {student = ["%s"]}, ' % os.path.join(
        student_dir, "model.safetensors")
    text = re.sub(r"module attributes \{", "module attributes {" + scopes, text, count=1)
    with open(step, "w") as f:
        f.write(text)
    out = os.path.join(work, name + "_grads")
    run([os.path.join(bin_dir, "attnedit-run"), "grad", step, "--tokens",
         ",".join(map(str, TOKENS)), "--out-dir", out])

    loss, grads = reference_grads(teacher_dir, student_dir)
    ours = float(np.load(os.path.join(out, "loss.npy")))
    worst = abs(ours - loss) / abs(loss)
    failures = []
    if worst > TOLERANCE:
        failures.append("loss %.8g vs %.8g" % (ours, loss))
    for pname, g in grads.items():
        got = np.load(os.path.join(out, "student__" + pname + ".npy"))
        err = float(np.max(np.abs(got - g)) / max(np.max(np.abs(g)), 1e-30))
        worst = max(worst, err)
        if err > TOLERANCE:
            failures.append("%s: relative error %.3g" % (pname, err))
    print("%-8s loss %.6f, %d parameter gradients, worst relative error %.2e"
          % (name, loss, len(grads), worst))
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir", required=True)
    args = ap.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    failures = []
    for name in ("llama", "qwen3"):
        failures += ["%s: %s" % (name, f) for f in check(name, args.bin_dir, args.work_dir)]
    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
