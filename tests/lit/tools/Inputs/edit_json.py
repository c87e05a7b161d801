"""Edits a JSON file in place: runs STATEMENTS with the file's value as `c`.

usage: edit_json.py FILE STATEMENTS
"""
import json
import sys

path, statements = sys.argv[1], sys.argv[2]
with open(path) as f:
    c = json.load(f)
exec(statements)
with open(path, "w") as f:
    json.dump(c, f)
