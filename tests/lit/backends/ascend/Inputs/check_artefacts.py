"""check_artefacts.py SCHEDULE ASCENDC TILING TRACE: the four files one
--attnedit-ascend-pipeline run writes, each read as its consumer would read
it: the flatbuffer's file identifier, the Ascend C entry points, the
TCubeTiling JSON, and the Chrome trace as strict UTF-8 JSON (a viewer rejects
anything else). Prints one line per file; exits 1 on the first bad one."""
import json
import sys

schedule, ascendc, tiling, trace = sys.argv[1:5]
data = open(schedule, "rb").read()
if data[4:8] != b"AESC":
    sys.exit("%s: no AESC file identifier" % schedule)
print("schedule AESC", len(data) > 1000)
src = open(ascendc, encoding="utf-8").read()
print("ascendc kernels", src.count('extern "C" __global__ __aicore__ void'))
til = json.load(open(tiling, encoding="utf-8"))
print("tiling", sorted({k for t in til["tilings"] for k in t["TCubeTiling"]} & {"baseM", "baseN", "baseK", "qTile"}))
events = json.load(open(trace, encoding="utf-8"))["traceEvents"]
spans = [e for e in events if e["ph"] == "X"]
# Every span names the op it came from in printable text.
print("trace spans", len(spans) > 0, all(e["args"]["where"].isprintable() for e in spans))
