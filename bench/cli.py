"""What the bench drivers share: argument types, so that a bad value is one
line naming the option rather than a traceback later (an IndexError for
--rounds 0, a missing binary for a wrong --build), where results go and how
they are written, and what a driver does when it is stopped."""

import argparse
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import time


def int_at_least(least, why=""):
    """An argparse type: an integer of at least `least`; `why` says what the
    bound is for (in the message a smaller value gets)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not an integer" % text)
        if value < least:
            raise argparse.ArgumentTypeError("must be at least %d%s, not %d"
                                             % (least, " (%s)" % why if why else "", value))
        return value
    return parse


# Rounds, steps, seeds: a median of none is no figure.
positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
# Drivers whose figure is the median over the steps after the first two.
steps_past_warmup = int_at_least(3, "the first two steps compile and warm up, and the "
                                    "figure is the median of the steps after them")


def build_dir(text):
    """A build directory: it holds bin/attnedit-run."""
    if not os.path.isfile(os.path.join(text, "bin", "attnedit-run")):
        raise argparse.ArgumentTypeError(
            "%s has no bin/attnedit-run: give the build directory (bash scripts/setup.sh makes build/)" % text)
    return text


BUILD_HELP = "build directory holding bin/attnedit-run (default: build/ of this checkout)"


def description(doc):
    """A driver's --help description: its docstring's whole first paragraph
    (its first line alone stops mid-sentence)."""
    return doc.strip().split("\n\n")[0]


def stop_on_sigterm():
    """Makes SIGTERM raise SystemExit, as Ctrl-C raises KeyboardInterrupt:
    subprocess.run then kills the command it waits for, and every `with
    TemporaryDirectory()` removes its directory, where the default action
    would leave the attnedit-run child running and the directory behind."""
    def stop(signum, frame):
        sys.exit("stopped by SIGTERM")
    signal.signal(signal.SIGTERM, stop)


def write_text(path, text):
    """Writes a result file whole or not at all: into a file beside it, then
    renamed over it, so that a driver stopped mid-write leaves the previous
    figures rather than half a file."""
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path, obj, indent=2):
    """A result JSON, written as write_text does."""
    write_text(path, json.dumps(obj, indent=indent) + "\n")


def torch_absent(what):
    """True, having said so, when PyTorch cannot be imported: the figures
    that need it are skipped (the driver exits 0) rather than a traceback."""
    try:
        importlib.import_module("torch")
    except ImportError:
        print("%s: skipped: python3-torch is absent (apt-get install python3-torch)" % what)
        return True
    return False


def run_logged(cmd, log, env=None):
    """Runs `cmd` with its output in the file `log`; returns the seconds it
    took. A failure exits with the log's last lines and its path, which say
    why (a CalledProcessError said only that it failed)."""
    start = time.time()
    with open(log, "w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if code:
        with open(log, errors="replace") as f:
            tail = f.readlines()[-20:]
        sys.exit("failed (exit %d): %s\n%s\n(the whole log: %s)"
                 % (code, " ".join(cmd), "".join(tail).rstrip(), log))
    return time.time() - start


RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
OUT_HELP = ("report JSON (default: bench/results/NAME.json at the default settings, "
            "NAME-SETTINGS.json with others, e.g. NAME-rounds1.json)")


def results_path(parser, args, name, ignore=("build", "out", "work")):
    """Where a driver writes its JSON unless given --out: bench/results/NAME.json
    at the driver's default settings, NAME-SETTINGS.json otherwise
    (train_throughput-rounds1.json, serve-quick.json), so that a smoke or
    partial run never replaces a full run's figures."""
    parts = []
    for dest, value in vars(args).items():
        default = parser.get_default(dest)
        if dest in ignore or value == default or str(value) == str(default):
            continue
        option = dest.replace("_", "-")
        if isinstance(value, bool):
            parts.append(option if value else "no-" + option)
        else:
            text = os.path.basename(str(value).rstrip("/")) or str(value)
            parts.append(option + re.sub(r"[^A-Za-z0-9.,]+", "_", text)[:32])
    return os.path.join(RESULTS, "-".join([name] + parts) + ".json")
