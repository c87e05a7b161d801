"""Argument types the bench drivers share, so that a bad value is one line
naming the option rather than a traceback later (an IndexError for
--rounds 0, a missing binary for a wrong --build)."""

import argparse
import os


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
