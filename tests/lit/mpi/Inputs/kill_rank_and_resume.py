"""Runs an `mpirun ... attnedit-run` training job, kills one rank with
SIGKILL (or freezes it with SIGSTOP) as soon as the job's first checkpoint is
on disk, checks that the other ranks end within seconds (OpenMPI aborts the
job when a rank dies; our watchdog when a collective waits longer than
ATTNEDIT_MPI_TIMEOUT) and that the job had not finished, then reruns it with
--resume.

usage: kill_rank_and_resume.py OUT_DIR RANK [KILL|STOP] -- mpirun ... attnedit-run ... --out OUT_DIR
"""
import os
import signal
import subprocess
import sys
import time

out, rank = sys.argv[1], sys.argv[2]
how = sys.argv[3] if sys.argv[3] != "--" else "KILL"
command = sys.argv[sys.argv.index("--") + 1:]
state = os.path.join(out, "work", "checkpoint.json")


def descendants(root):
    """The pids below `root` in the process tree."""
    children = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(pid))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rank_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return None
    for entry in env:
        if entry.startswith(b"OMPI_COMM_WORLD_RANK="):
            return entry.split(b"=", 1)[1].decode()
    return None


proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
deadline = time.time() + 300
while not os.path.exists(state):
    if proc.poll() is not None:
        sys.stderr.write(proc.stderr.read())
        sys.exit(f"the job ended (exit {proc.returncode}) before writing a checkpoint")
    if time.time() > deadline:
        proc.kill()
        sys.exit("no checkpoint after 300 s")
    time.sleep(0.01)
victims = [p for p in descendants(proc.pid) if rank_of(p) == rank]
if not victims:
    proc.kill()
    sys.exit(f"no process of rank {rank} under mpirun")
for pid in victims:
    os.kill(pid, signal.SIGSTOP if how == "STOP" else signal.SIGKILL)
killed = time.time()
try:
    _, err = proc.communicate(timeout=30)
except subprocess.TimeoutExpired:
    proc.kill()
    sys.exit("the other ranks still run 30 s after one died")
seconds = time.time() - killed
if os.path.exists(os.path.join(out, "config.json")):
    sys.exit("the job finished before the rank was killed; the test proves nothing")
if proc.returncode == 0:
    sys.exit("mpirun exited 0 after a rank was killed")
# Within seconds, as the README promises; 10 leaves room for a loaded machine.
print(f"{'stopped' if how == 'STOP' else 'killed'} rank {rank}; the job ended {'within 10 s' if seconds < 10 else f'after {seconds:.1f} s'}, "
      f"exit {proc.returncode}")
sys.stderr.write(err)

resumed = subprocess.run(command + ["--resume"], stderr=subprocess.PIPE, text=True)
sys.stderr.write(resumed.stderr)
sys.exit(resumed.returncode)
