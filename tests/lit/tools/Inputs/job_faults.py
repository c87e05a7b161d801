"""Faults a long job meets, each compared byte for byte with an
uninterrupted run of the same job (issue 8).

usage: job_faults.py MODE WORK_DIR -- attnedit-run distill ... (without --out)

MODE:
  kills       SIGKILL the job at seeded random moments, resume until it ends.
  concurrent  start a second job into the same --out while the first runs:
              it must be refused naming the holder; the first must finish.
  enospc      run with --out on a tmpfs too small for the job (needs a private
              mount namespace: run under `unshare -m`): the job must fail with
              the file and "No space left on device", leave no temporary
              behind, and resume to the same weights once the disk grows.
Prints one line per check; exits non-zero on the first failure.
"""
import filecmp
import os
import random
import shutil
import signal
import subprocess
import sys
import time

mode, work = sys.argv[1], sys.argv[2]
command = sys.argv[sys.argv.index("--") + 1:]


def run(out, *extra, check=True):
    p = subprocess.run(command + ["--out", out, *extra], stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        sys.exit(f"{out}: exit {p.returncode}\n{p.stderr}")
    return p


def same_model(a, b):
    for f in ("model.safetensors", "config.json"):
        if not filecmp.cmp(os.path.join(a, f), os.path.join(b, f), shallow=False):
            sys.exit(f"{a}/{f} and {b}/{f} differ")


def leftovers(root):
    return [os.path.join(d, f) for d, dirs, files in os.walk(root)
            for f in files + dirs if ".tmp" in f or ".old-" in f]


# Timed warm: the first run compiles the step functions (the disk cache
# then serves every later one), and kill moments are drawn from the
# warm run's length.
run(os.path.join(work, "warm"))
reference = os.path.join(work, "reference")
start = time.time()
run(reference)
seconds = time.time() - start

if mode == "kills":
    rng = random.Random(8)
    out = os.path.join(work, "killed")
    kills = 0
    # Five runs killed at random moments (before, during and after
    # checkpoints, whatever the machine's load), then one left to finish.
    # Moments are fractions of the reference run's time; under a loaded
    # test run that time can exceed a whole later run, so a job that ends
    # before any kill landed is started afresh with the moments halved.
    scale, attempt = 1.0, 0
    while attempt < 6:
        proc = subprocess.Popen(command + ["--out", out] + (["--resume"] if attempt else []),
                                stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(0.1, 0.6) * seconds * scale if attempt < 5 else 600)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            attempt += 1
            continue
        if proc.returncode != 0:
            sys.exit(f"attempt {attempt}: exit {proc.returncode}")
        if kills == 0 and scale > 1 / 64:
            shutil.rmtree(out)
            scale /= 2
            continue
        break
    else:
        sys.exit("the job never finished")
    if kills < 1:
        sys.exit(f"only {kills} kills landed; the test proves too little")
    same_model(reference, out)
    print(f"killed {kills} times at random moments: same weights as the uninterrupted run")

elif mode == "concurrent":
    out = os.path.join(work, "shared")
    first = subprocess.Popen(command + ["--out", out], stderr=subprocess.PIPE, text=True)
    lock = os.path.join(out, "work", "job.lock")
    deadline = time.time() + 60
    while not (os.path.exists(lock) and os.path.getsize(lock) > 0):
        if first.poll() is not None or time.time() > deadline:
            sys.exit("the first job never took its lock")
        time.sleep(0.01)
    second = run(out, check=False)
    if second.returncode == 0 or "another job is using this directory (pid" not in second.stderr:
        sys.exit(f"the second job was not refused:\n{second.stderr}")
    print("second job refused:", second.stderr.strip().splitlines()[-1].split("error: ")[-1])
    if first.wait() != 0:
        sys.exit(f"the first job failed:\n{first.stderr.read()}")
    same_model(reference, out)
    print("first job: same weights as a job alone")

elif mode == "enospc":
    disk = os.path.join(work, "disk")
    os.makedirs(disk, exist_ok=True)
    used = sum(os.path.getsize(os.path.join(d, f))
               for d, _, files in os.walk(reference) for f in files)
    size = used // 3
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", disk], check=True)
    try:
        out = os.path.join(disk, "out")
        full = run(out, check=False)
        if full.returncode == 0:
            sys.exit("the job fitted on the small disk; the test proves nothing")
        if "LLVM ERROR" in full.stderr or "No space left on device" not in full.stderr:
            sys.exit(f"no clear error on a full disk:\n{full.stderr}")
        print("full disk:", full.stderr.strip().splitlines()[-1].split("error: ")[-1])
        if leftovers(out):
            sys.exit(f"temporaries left behind: {leftovers(out)}")
        print("no temporary left behind")
        subprocess.run(["mount", "-o", f"remount,size={used * 3}", disk], check=True)
        run(out, "--resume")
        same_model(reference, out)
        print("resumed on a larger disk: same weights as the uninterrupted run")
    finally:
        subprocess.run(["umount", disk])
