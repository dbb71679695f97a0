"""Claiming and replacing a build folder safely.

Contracts:
- Only one build at a time writes a given `--out`: the target is locked (an advisory
  `flock` on `.<name>.lock` beside it) for the whole build; a second build gets a
  one-line error instead of silently replacing the first.
- `--force` replaces only a qnnflow build (a folder holding our build record,
  `build.json`); any other file or folder at `--out` is refused, never deleted.
- Replacement is atomic where the kernel allows it: the finished temporary folder
  and the old build are swapped with `renameat2(RENAME_EXCHANGE)`, so `--out` holds
  the complete old or the complete new build at every instant. Deleting the old
  build afterwards may fail (an undeletable file); the new build stays in place and
  the leftover is named in a warning.
- A failed build leaves nothing, unless QNNFLOW_KEEP_FAILED=1 is set: then its temporary
  folder (the step graphs so far) is kept as `<out>.failed` beside `--out`, replacing an
  older one, for debugging; `--out` itself is untouched either way.
- Temporary folders of killed builds (`.<name>.tmp-<pid>` whose process is gone) are
  removed when the next build claims the same target.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

from .errors import FlowError

log = logging.getLogger(__name__)

BUILD_RECORD = "build.json"
_RENAME_EXCHANGE = 2


def is_build(path: Path) -> bool:
    return path.is_dir() and (path / BUILD_RECORD).is_file()


def _check_target(out: Path, force: bool) -> None:
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise FlowError(f"--out {out} is a file, not a build folder; --force replaces only a qnnflow build, "
                        "choose another --out")
    if not is_build(out):
        raise FlowError(f"--out {out} is a folder that is not a qnnflow build (no {BUILD_RECORD}); "
                        "--force replaces only a qnnflow build, choose another --out")
    if not force:
        raise FlowError(f"build folder {out} exists; pass --force to replace it or choose another --out")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temps(out: Path) -> None:
    for p in out.parent.glob(f".{out.name}.tmp-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            log.info("removing %s, left by a killed build", p)
            shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def claim(out: Path, force: bool):
    """Lock `out` for one build and yield the temporary folder to build in (see module doc)."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        lock_path = out.parent / f".{out.name}.lock"
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as exc:
        raise FlowError(f"cannot create the build folder {out} ({exc.strerror or exc}); "
                        "choose an --out in a writable folder") from None
    locked = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # the holder unlinks the lock file when it ends: a lock on that orphan is no lock
            locked = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except OSError:
            pass
        if not locked:
            raise FlowError(f"another build is writing {out} right now; wait for it or choose another "
                            "--out")
        _check_target(out, force)
        _remove_stale_temps(out)
        work = (out.parent / f".{out.name}.tmp-{os.getpid()}").resolve()
        if work.exists():
            shutil.rmtree(work)
        try:
            (work / "steps").mkdir(parents=True)
        except OSError as exc:
            raise FlowError(f"cannot write in {out.parent} ({exc.strerror or exc}); "
                            "choose an --out in a writable folder") from None
        try:
            yield work
        except BaseException:
            if os.environ.get("QNNFLOW_KEEP_FAILED") == "1" and work.is_dir():
                failed = out.parent / f"{out.name}.failed"
                shutil.rmtree(failed, ignore_errors=True)
                with contextlib.suppress(OSError):
                    work.rename(failed)
                    log.warning("the failed build's folder is kept as %s", failed)
            raise
        finally:  # after replace() only what remained of an old build can be here
            shutil.rmtree(work, ignore_errors=True)
    finally:
        if locked:
            with contextlib.suppress(OSError):
                os.unlink(lock_path)
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the call is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def replace(work: Path, out: Path) -> None:
    """Put the finished build `work` at `out`, the old build (if any) going away (see module doc)."""
    if not out.exists():
        work.rename(out)
        return
    if _exchange(work, out):
        old = work  # the old build now sits at the temporary name
    else:  # two renames: a moment without `out`, but never a half build
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        try:
            work.rename(out)
        except BaseException:
            old.rename(out)
            raise
    shutil.rmtree(old, ignore_errors=True)
    if old.exists():
        log.warning("the new build is at %s; the old one could not be deleted completely and is left in %s",
                    out, old)


# What the hardware and its verification are made of: hashed into manifest.json at build time.
# Left out: what verification, simulation and reports write or regenerate (outputs/, verify/,
# the stitched copies in rtl/, the simulator cache in rtlsim/, reports, logs).
MANIFEST = "manifest.json"
_UNHASHED_DIRS = {"outputs", "verify", "rtl", "rtlsim", "synth", "bitstream", "bitstream.failed", "deploy"}
_UNHASHED_FILES = {MANIFEST, "report.json", "report.txt", "report.html", "export.log"}


def _hashed_files(build: Path):
    for p in sorted(build.rglob("*")):
        rel = p.relative_to(build)
        if p.is_file() and rel.parts[0] not in _UNHASHED_DIRS and str(rel) not in _UNHASHED_FILES \
                and not rel.parts[0].startswith("."):
            yield rel, p


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(build: Path) -> dict:
    """Hash every file the hardware is made of (weights, thresholds, RTL, graphs) into manifest.json."""
    files = {str(rel): _sha256(p) for rel, p in _hashed_files(build)}
    manifest = {"format": 1, "algorithm": "sha256", "files": files}
    (build / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def check_manifest(build: Path) -> None:
    """Refuse a build whose hardware files differ from manifest.json, naming each changed file.

    A build from before manifests existed (no manifest.json) is accepted with a warning."""
    p = build / MANIFEST
    if not p.is_file():
        log.warning("%s has no %s (built before manifests); its files cannot be checked", build, MANIFEST)
        return
    try:
        want = json.loads(p.read_text())["files"]
        if not isinstance(want, dict):
            raise TypeError("files is not an object")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise FlowError(f"{p} is corrupt ({exc}); rebuild with `qnnflow build ... --force`") from None
    have = {str(rel): p for rel, p in _hashed_files(build)}
    changed = sorted(f for f, h in want.items() if f in have and _sha256(have[f]) != h)
    missing = sorted(set(want) - set(have))
    added = sorted(set(have) - set(want))
    problems = [f"changed: {', '.join(changed[:5])}" if changed else "",
                f"missing: {', '.join(missing[:5])}" if missing else "",
                f"not in the build: {', '.join(added[:5])}" if added else ""]
    problems = [x for x in problems if x]
    if problems:
        n = len(changed) + len(missing) + len(added)
        raise FlowError(f"{build} differs from its manifest ({n} file(s); {'; '.join(problems)}); "
                        "restore the build's files or rebuild with `qnnflow build ... --force`")


# ---------------------------------------------------------------------------------
# The folder's contents: step models (steps/NN_<step>.onnx), the build record
# (build.json: the build's inputs and input facts), verification records, relocation.

def final_graph(build_dir: Path) -> Path:
    """The last saved step model of a build: the accelerator's HW-layer graph."""
    steps = sorted((Path(build_dir) / "steps").glob("[0-9][0-9]_*.onnx"))
    if not steps:
        raise FlowError(f"{build_dir}/steps/ holds no step models; is {build_dir} a complete qnnflow build?")
    return steps[-1]


def step_file(index: int, name: str) -> str:
    return f"{index:02d}_{name}.onnx"


def find_step(build_dir: Path, name: str) -> Path:
    """The saved model of step `name` in a finished build (any index: a build from
    before a step was added numbers the later ones differently)."""
    found = sorted((Path(build_dir) / "steps").glob(f"[0-9][0-9]_{name}.onnx"))
    if not found:
        raise FlowError(f"{build_dir}/steps/ has no model of step {name}; is {build_dir} a complete qnnflow build?")
    return found[0]


_TEXT_SUFFIXES = (".v", ".sv", ".svh", ".tcl", ".json", ".sh", ".txt", ".md", ".f")


def _rewrite_paths(folder: Path, old: str, new: str) -> None:
    """Replace the path prefix `old` by `new` in the string attributes and metadata of
    every ONNX graph under `folder` and in its text files (logs excepted: they record
    what ran, where it ran)."""
    import onnx

    for p in folder.rglob("*"):
        if not p.is_file():
            continue
        if p.suffix == ".onnx":
            m = onnx.load(str(p), load_external_data=False)
            changed = False
            for node in m.graph.node:
                for a in node.attribute:
                    if a.type == a.STRING and old.encode() in a.s:
                        a.s = a.s.replace(old.encode(), new.encode())
                        changed = True
            for prop in m.metadata_props:
                if old in prop.value:
                    prop.value = prop.value.replace(old, new)
                    changed = True
            if changed:
                onnx.save(m, str(p))
        elif p.suffix in _TEXT_SUFFIXES:
            text = p.read_text(errors="replace")
            if old in text:
                p.write_text(text.replace(old, new))


def relocate(work: Path, final: Path) -> None:
    """Rewrite absolute paths from the temporary folder `work` to the final one (a Vivado
    project, a compression study's folder), so the renamed folder stays self-consistent."""
    _rewrite_paths(work, str(work.resolve()), str(final.resolve()))


def relativize(build: Path) -> None:
    """Make every path into the build relative to the build's root: FINN's node attributes
    (code_gen_dir_ipgen, ipgen_path, ip_path, the partitions' model), the generated Verilog's
    memory files, our records. The folder can then be moved or copied as a whole; readers
    resolve the paths against the folder they opened (`resolve_paths`)."""
    _rewrite_paths(build, str(build.resolve()) + "/", "")


def resolve_paths(model, build_dir: Path):
    """The graph `model` of the build `build_dir` with its build-relative paths (node
    attributes and metadata naming a file or folder inside the build) made absolute in
    memory, so FINN's code that opens them works from any working directory."""
    root = Path(build_dir).resolve()
    tops = {p.name for p in root.iterdir()}

    def absolute(text: str):
        if not text or text.startswith("/") or text.split("/", 1)[0] not in tops:
            return None
        target = root / text
        return str(target) if target.exists() else None

    for node in model.graph.node:
        for a in node.attribute:
            if a.type == a.STRING:
                new = absolute(a.s.decode(errors="replace"))
                if new is not None:
                    a.s = new.encode()
    for prop in model.model.metadata_props:
        new = absolute(prop.value)
        if new is not None:
            prop.value = new
    return model


def load_graph(build_dir: Path, path: Path):
    """A graph saved in the build `build_dir`, its paths made absolute (`resolve_paths`)."""
    from qonnx.core.modelwrapper import ModelWrapper

    return resolve_paths(ModelWrapper(str(path)), build_dir)


def read_record(p: Path) -> dict:
    """A JSON object record of the build (build.json, report.json), or a one-line error."""
    try:
        data = json.loads(Path(p).read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise FlowError(f"{p} is corrupt ({str(exc).splitlines()[0][:100]}); "
                        "rebuild with `qnnflow build ... --force`") from None
    return data


def load_build_config(build_dir: Path) -> dict:
    """The build record (build.json), refused in one line when it is missing, corrupt or
    lacks what verification needs."""
    p = Path(build_dir) / BUILD_RECORD
    if not Path(build_dir).is_dir():
        raise FlowError(f"{build_dir} is not a folder; give a qnnflow build folder (`qnnflow build --out`)")
    if not p.is_file():
        raise FlowError(f"{build_dir} is not a qnnflow build folder (no build.json); run `qnnflow build` first")
    info = read_record(p)
    shape = info.get("input_shape")
    problems = [k for k, ok in (
        ("samples", isinstance(info.get("samples"), int) and not isinstance(info.get("samples"), bool)
         and info["samples"] >= 1),
        ("input_dtype", isinstance(info.get("input_dtype"), str)),
        ("input_shape", isinstance(shape, list) and all(isinstance(d, int) and d >= 1 for d in shape)),
    ) if not ok]
    if problems:
        raise FlowError(f"{p} is corrupt ({', '.join(problems)} missing or invalid); "
                        "rebuild with `qnnflow build ... --force`")
    return info


def open_build(build_dir: Path) -> dict:
    """A finished build for a command that reads it (verify, rtlsim, synth, bitstream):
    its files match its manifest (else the changed ones are named) and its build record
    is sound. Nothing is written."""
    build_dir = Path(build_dir)
    if not build_dir.exists():
        raise FlowError(f"{build_dir} does not exist; run `qnnflow build --out {build_dir}` first")
    if not is_build(build_dir):
        raise FlowError(f"{build_dir} is not a qnnflow build folder (no build.json); run `qnnflow build` first")
    missing = [p for p in ("report.json", "codegen", "steps") if not (build_dir / p).exists()]
    if missing:
        raise FlowError(f"{build_dir} is not a finished qnnflow build ({', '.join(missing)} missing); "
                        f"rebuild it with `qnnflow build --out {build_dir} --force`")
    check_manifest(build_dir)
    return load_build_config(build_dir)


def write_build_info(build_dir: Path, info: dict) -> None:
    (Path(build_dir) / BUILD_RECORD).write_text(json.dumps(info, indent=2, default=str))


def record_verification(build_dir: Path, report: dict, record: Path, result: dict) -> bool:
    """Keep a `qnnflow verify` run as its own record; return whether report.json now shows it.

    The run's outputs and result live in `record` (verify/<time>-n<samples>/); report.json lists
    every record under `verify_records` and shows the strongest one (most samples, the later one
    on equal counts): a smaller run never replaces a larger one, and the build's own outputs/
    stay as the build wrote them.
    """
    (record / "record.json").write_text(json.dumps(result, indent=2, default=float))
    entry = {"record": str(record.relative_to(build_dir)), "samples": result["verify"]["samples"],
             "mismatches": result["verify"]["mismatches"], "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    report.setdefault("verify_records", []).append(entry)
    shown = (report.get("verify") or {}).get("samples") or 0
    stronger = entry["samples"] >= shown
    if stronger:
        report.update(result)
        report["verify_shown"] = entry["record"]
    rp = Path(build_dir) / "report.json"
    tmp = rp.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=float))
    tmp.replace(rp)
    from .html_report import write_html

    write_html(build_dir, report)
    return stronger
