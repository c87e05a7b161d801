"""What the bench drivers share: argument types, so that a bad value is one
line naming the option rather than a traceback later (an IndexError for
--rounds 0, a missing binary for a wrong --build), and where results go."""

import argparse
import os
import re


def positive_int(text):
    """An integer of at least 1 (rounds, steps: a median of none is no figure)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, not %d" % value)
    return value


def build_dir(text):
    """A build directory: it holds bin/attnedit-run."""
    if not os.path.isfile(os.path.join(text, "bin", "attnedit-run")):
        raise argparse.ArgumentTypeError(
            "%s has no bin/attnedit-run: give the build directory (bash scripts/setup.sh makes build/)" % text)
    return text


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
