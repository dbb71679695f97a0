"""Verilog/SystemVerilog source text, shared by the stitcher (hw/stitch.py) and
synthesis (hw/synth/): comment stripping, module headers and ports, which file
defines which module, instance lists, and where FINN's RTL library files are.

Parsing is for the sources qnnflow handles: FINN's generated wrappers and
finn-rtllib, qnnflow's own cores and the stitched top level, all ANSI-style headers.
It is not a general Verilog parser."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HwError

RTL_EXTS = (".v", ".sv", ".vh", ".svh")
DEFINITION = re.compile(r"\b(module|package|interface|macromodule)\s+(?:automatic\s+|static\s+)?([A-Za-z_]\w*)")


TEMPLATES = Path(__file__).resolve().parent / "rtl" / "templates"


def render_template(name: str, **values) -> str:
    """hw/rtl/templates/<name> with its $NAME placeholders filled (string.Template): the
    Verilog that qnnflow generates lives there, the values come from the caller."""
    from string import Template

    try:
        return Template((TEMPLATES / name).read_text()).substitute({k: str(v) for k, v in values.items()})
    except KeyError as exc:
        raise HwError(f"template {name}: no value for ${exc.args[0]}") from None


def finn_rtllib() -> Path:
    import finn

    return Path(finn.__file__).parent / "finn-rtllib"


def write_if_changed(path: Path, text: str | bytes) -> None:
    """Write atomically, and not at all when the file already holds these bytes (the
    simulator's and synthesis's caches key on file contents and times)."""
    data = text.encode() if isinstance(text, str) else text
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return re.sub(r"\(\*.*?\*\)", " ", text, flags=re.S)  # (* attributes *)


def balanced(text: str, i: int) -> int:
    """Index just past the parenthesis group opening at text[i] == '('."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    raise ValueError("unbalanced parentheses")


def split_top(text: str) -> list[str]:
    """Split on commas outside (), [] and {}."""
    items, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur))
    return [x for x in items if x.strip()]


def module_header(path: Path, module: str) -> tuple[str, str]:
    """(parameter list, port list) texts of an ANSI-style module declaration."""
    text = strip_comments(path.read_text())
    m = re.search(rf"\bmodule\s+{re.escape(module)}\b\s*", text)
    if not m:
        raise HwError(f"module {module} not found in {path}; regenerate the layer's RTL (PrepareIP)")
    i, params = m.end(), ""
    try:
        if text.startswith("#", i):
            j = text.index("(", i)
            k = balanced(text, j)
            params, i = text[j + 1:k - 1], k
        j = text.index("(", i)
        ports = text[j + 1:balanced(text, j) - 1]
    except ValueError:
        raise HwError(f"cannot parse the header of module {module} in {path}") from None
    return params, ports


def module_ports(path: Path, module: str) -> dict[str, str]:
    """Port name -> direction ('input'/'output'/'inout') of `module` in a Verilog file."""
    _, ports = module_header(path, module)
    out, direction = {}, None
    for item in split_top(ports):
        m = re.match(r"\s*(input|output|inout)\b(.*)", item, re.S)
        rest = item
        if m:
            direction, rest = m.group(1), m.group(2)
        names = re.findall(r"[A-Za-z_]\w*", re.sub(r"\[[^\]]*\]", " ", rest))
        if direction is None or not names:
            raise HwError(f"cannot parse port {item.strip()!r} of module {module} in {path}")
        out[names[-1]] = direction
    return out


def module_params(path: Path, module: str) -> set[str]:
    """Names of the parameters (with defaults) in `module`'s header."""
    params, _ = module_header(path, module)
    return {re.findall(r"[A-Za-z_]\w*", item.split("=")[0])[-1]
            for item in split_top(params) if "=" in item}


def defines_module(path: Path, module: str) -> bool:
    return re.search(rf"\bmodule\s+{re.escape(module)}\b", path.read_text()) is not None


class RtlLibrary:
    """Finds the finn-rtllib file a generated layer names: first in the layer's own
    code generation folder, then by file name in finn-rtllib (test benches excluded),
    the op's preferred subfolders deciding between files of the same name."""

    def __init__(self, root: Path | None = None):
        self.root = root or finn_rtllib()
        self._index: dict[str, list[Path]] | None = None

    def index(self) -> dict[str, list[Path]]:
        if self._index is None:
            idx: dict[str, list[Path]] = {}
            for p in self.root.rglob("*"):
                if p.suffix in RTL_EXTS and not ({"sim", "tb", "test", "tests"} & set(p.parts)) \
                        and not p.stem.endswith("_tb"):
                    idx.setdefault(p.name, []).append(p)
            self._index = idx
        return self._index

    def resolve(self, name: str, code_gen_dir: Path, hints: list[str]) -> Path:
        local = code_gen_dir / name
        if local.is_file():
            return local
        parts = tuple(x for x in Path(name).parts if x not in ("..", "."))
        cands = self.index().get(parts[-1], [])
        if len(cands) > 1 and len(parts) > 1:
            cands = [c for c in cands if c.parts[-len(parts):] == parts] or cands
        if len(cands) > 1:
            for h in hints:
                pick = [c for c in cands if c.parent == self.root / h]
                if len(pick) == 1:
                    return pick[0]
        if len(cands) == 1:
            return cands[0]
        where = "found in several places" if cands else "not found"
        raise HwError(f"RTL file {name} {where} in {code_gen_dir} or {self.root}; "
                      "check the FINN installation (finn-plus) and regenerate the layer (PrepareIP)")


@dataclass
class SourceSet:
    """Which file of a file list defines which module or package, and which other
    files' definitions each one mentions."""
    files: list[str]                          # compile order, relative to the folder
    defines: dict[str, str]                   # module/package name -> file
    uses: dict[str, set[str]]                 # file -> names of other files' modules/packages

    @classmethod
    def scan(cls, folder: Path, files: list[str]) -> "SourceSet":
        texts = {f: strip_comments((folder / f).read_text(errors="replace")) for f in files}
        defines: dict[str, str] = {}
        for f, t in texts.items():
            for _, name in DEFINITION.findall(t):
                defines.setdefault(name, f)
        uses = {}
        for f, t in texts.items():
            words = set(re.findall(r"[A-Za-z_]\w*", t))
            uses[f] = {n for n in words & defines.keys() if defines[n] != f}
        return cls(files, defines, uses)

    def closure(self, module: str) -> list[str]:
        """Files needed to elaborate `module` (names mentioned, transitively), compile order."""
        if module not in self.defines:
            raise HwError(f"module {module} is not defined in any source of files.f; "
                          "restitch the design (delete <build>/rtl and run again)")
        need, todo = set(), [self.defines[module]]
        while todo:
            f = todo.pop()
            if f not in need:
                need.add(f)
                todo += [self.defines[n] for n in self.uses.get(f, ())]
        return [f for f in self.files if f in need]


@dataclass
class Instance:
    module: str
    name: str
    params: dict[str, str]
    tied: list[str] = field(default_factory=list)    # inputs tied to '0
    unused: list[str] = field(default_factory=list)  # outputs left open


def module_instances(path: Path, module: str) -> list[Instance]:
    """The module instances in `module` of `path` (one instance per statement, named
    port connections, as the stitcher writes them): parameter overrides, and the
    ports tied to zero or left open."""
    text = strip_comments(path.read_text())
    body = text[text.index(";", text.index(f"module {module}")) + 1:]
    out = []
    for m in re.finditer(r"^\s*([A-Za-z_]\w*)\s*(#\s*\((.*?)\))?\s*([A-Za-z_]\w*)\s*\(\s*\.", body, re.M | re.S):
        params = {}
        for item in re.finditer(r"\.([A-Za-z_]\w*)\s*\(\s*(\"[^\"]*\"|[^()]*?)\s*\)", m.group(3) or ""):
            params[item.group(1)] = item.group(2)
        inst = Instance(m.group(1), m.group(4), params)
        conns = body[m.end() - 1:body.index(";", m.end())]
        for c in re.finditer(r"\.([A-Za-z_]\w*)\s*\(([^()]*)\)", conns):
            v = c.group(2).strip()
            if v == "":
                inst.unused.append(c.group(1))
            elif re.fullmatch(r"'0|\d*'[bdh]0+|0", v):
                inst.tied.append(c.group(1))
        out.append(inst)
    if not out:
        raise HwError(f"no module instances found in {path}; restitch the design (delete it and run again)")
    return out
