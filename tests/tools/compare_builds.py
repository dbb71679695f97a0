"""Usage: python tests/tools/compare_builds.py OLD_BUILD NEW_BUILD [OLD_SRC_TREE NEW_SRC_TREE]

Compare two qnnflow build folders file by file after removing what differs between
any two runs of the same code: the build folder's and source tree's absolute paths,
the random suffixes of FINN's code generation folders (tempfile.mkdtemp), qonnx's
random names for new tensors (renamed by order of appearance), and wall-clock
timings. Prints the files that still differ."""
import hashlib, json, re, sys
from collections import defaultdict
from pathlib import Path

import onnx
from google.protobuf import text_format

TREES = (sys.argv[3].encode(), sys.argv[4].encode()) if len(sys.argv) > 4 else ()
OUTS = (str(Path(sys.argv[1]).resolve()).encode(), str(Path(sys.argv[2]).resolve()).encode())
PAT = re.compile(rb"(code_gen_ipgen_[A-Za-z]+_(?:rtl|hls)_\d+)_[a-z0-9_]{8}")
TIMING_KEYS = {"seconds", "timings_s", "time", "elapsed_s", "build_s", "wall_s", "cpu_s", "cycles_per_s",
               "sim_seconds", "compile_seconds", "compile_s"}

def norm(b: bytes) -> bytes:
    for t in TREES: b = b.replace(t, b"<SRC>")
    for o in OUTS: b = b.replace(o, b"<OUT>")
    return PAT.sub(lambda m: m.group(1) + b"_XXXXXXXX", b)

def onnx_text(p: Path) -> bytes:
    m = onnx.load(str(p))
    names = {}
    for n in m.graph.node:
        for t in list(n.input) + list(n.output):
            names.setdefault(t, f"t{len(names)}")
    txt = text_format.MessageToString(m)
    for old in sorted(names, key=len, reverse=True):
        if old:
            txt = re.sub(r'(?<=")' + re.escape(old) + r'(?=")', names[old], txt)
    return norm(txt.encode())

def drop_timings(x):
    if isinstance(x, dict):
        return {k: drop_timings(v) for k, v in x.items() if k not in TIMING_KEYS and not k.endswith("_per_s")}
    if isinstance(x, list):
        return [drop_timings(v) for v in x]
    return x

def content(p: Path) -> bytes:
    if p.suffix == ".onnx":
        return onnx_text(p)
    b = norm(p.read_bytes())
    if p.suffix == ".json":
        try:
            return json.dumps(drop_timings(json.loads(b)), sort_keys=True).encode()
        except ValueError:
            pass
    return b

def index(root: Path):
    out = defaultdict(list)
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = norm(str(p.relative_to(root)).encode()).decode()
            out[rel].append(hashlib.sha256(content(p)).hexdigest())
    return {k: sorted(v) for k, v in out.items()}

a, b = index(Path(sys.argv[1])), index(Path(sys.argv[2]))
same = [k for k in a if k in b and a[k] == b[k]]
diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
print(f"{len(a)} / {len(b)} files; {len(same)} identical after normalization; differing: {len(diff)}")
for k in diff:
    print("  ", k, "only old" if k not in b else "only new" if k not in a else "")
