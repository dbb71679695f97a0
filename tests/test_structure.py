"""The code's structure contracts (README, "Layout"): module sizes, the one-way import
order inside flow/, no private names across modules, inputs-only BuildConfig, and
the patch registry's SystemVerilog fragments all in use."""
from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("flow", "hw", "models", "sim")
MAX_LINES = 600


def _modules():
    for pkg in PACKAGES:
        yield from sorted((ROOT / pkg).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names) for every import in the file, function-level ones included."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def test_no_module_over_the_size_limit():
    big = [f"{p.relative_to(ROOT)} ({n} lines)" for p in _modules()
           if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_flow_imports_form_no_cycle():
    """flow's modules import each other one way, function-level imports included."""
    mods = {_module_name(p): p for p in (ROOT / "flow").rglob("*.py")}
    graph = {}
    for name, path in mods.items():
        deps = set()
        for mod, names in _imports(path):
            deps |= {m for m in [mod] + [f"{mod}.{n}" for n in names] if m in mods and m != name}
        graph[name] = deps
    parent = {m: m.rpartition(".")[0] for m in graph}
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for d in graph[m]:
            if d == parent[m] or parent.get(d) == m and d.endswith("__init__"):
                continue
            if state.get(d) == 1:
                # a package's __init__ re-exporting a submodule is not a cycle of code
                if not (Path(mods[d]).name == "__init__.py" and m.startswith(d + ".")):
                    pytest.fail(f"import cycle in flow/: {' -> '.join(stack + [m, d])}")
            elif d not in state:
                visit(d, stack + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_no_private_name_imported_from_another_module():
    ours = set(PACKAGES)
    bad = []
    for path in _modules():
        for mod, names in _imports(path):
            if mod.split(".")[0] in ours:
                bad += [f"{path.relative_to(ROOT)}: {mod}.{n}" for n in names
                        if n.startswith("_") and not n.startswith("__")]
    assert not bad, bad


def test_build_config_holds_inputs_only():
    from flow.config import BuildConfig
    from flow.record import BuildRecord

    fields = {f.name for f in dataclasses.fields(BuildConfig)}
    assert not fields & {"extra", "work_dir"}
    # what steps hand on is typed: no free-form dict on the record either
    assert all(f.name != "extra" for f in dataclasses.fields(BuildRecord))
    steps_src = "\n".join(p.read_text() for p in (ROOT / "flow").rglob("*.py"))
    assert "cfg.extra" not in steps_src and "cfg.work_dir" not in steps_src


def test_every_recode_fragment_is_used_and_every_patch_targets_finn():
    from hw.patches import FRAGMENTS, PATCHES
    from hw.verilog import finn_rtllib

    used = set(re.findall(r'fragment\("([\w.]+)"\)', (ROOT / "hw" / "patches.py").read_text()))
    on_disk = {p.name for p in FRAGMENTS.glob("*.svh")}
    assert used == on_disk, (used ^ on_disk)
    names = {p.name for p in finn_rtllib().rglob("*.sv")}
    assert set(PATCHES) <= names, set(PATCHES) - names


def test_patches_apply_to_the_installed_finn_rtllib():
    """Every registered patch still finds its anchors (a FINN update that moves them
    fails here, by name, instead of inside a build)."""
    from hw.patches import PATCHES, patched
    from hw.verilog import RtlLibrary

    lib = RtlLibrary()
    for name in PATCHES:
        src = lib.resolve(name, ROOT, ["mvu", "fifo/hdl", "memstream/hdl", "thresholding/hdl", "dwc/hdl"])
        text = src.read_text()
        new = patched(name, text)
        assert new is not None and new != text, name
