"""The Vivado steps: every call into AMD's tools, kept thin and in this one module.

- `check_tools`: Vivado (and Vitis HLS where the build has HLS layers) present and of a
  version FINN supports, before anything runs or is written;
- `hls_synth`: FINN's HLSSynthIP (Vitis HLS) on the HLS layers;
- `stitched_ip`: FINN's CreateStitchedIP (Vivado IP integrator): every layer, our own
  RTL cores included (hw/ops: their code_generation_ipi adds the sources and memory files
  and references the wrapper module), chained into one IP `qnnflow_accel`;
- `zynq_bitstream`: our shell (hw/shell.py: PS, AXI DMA, TLAST counter, GPIO) around
  that IP, synthesis, implementation, bitstream, hardware handoff.

FINN's builder is not used (flow/finn_compat.py): FINN's Zynq flow inserts its HLS
IODMA and re-partitions the graph; our build is already partitioned, FIFO-sized and
verified, and the driver (hw/driver) talks to a standard AXI DMA.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import FlowError

SUPPORTED_VIVADO = ("2022.2", "2024.2")  # the versions finn-plus 1.6.1 supports
_VERSION = re.compile(r"(?<!\d)(20\d\d)\.([1-4])(?!\d)")  # "Vivado/2022.2", "vivado v2022.2"
_SUPPORTED_TEXT = " or ".join(SUPPORTED_VIVADO)
DOCKER_HINT = "or run qnnflow in the docker image with your Vivado mounted: docker/README.md"


class VivadoError(FlowError):
    """A vendor tool ran and failed; `log` is where it said why."""

    def __init__(self, step: str, reason: str, log: Path | None):
        self.step, self.reason, self.log = step, reason, log
        super().__init__(self.message())

    def message(self, log: Path | None = None) -> str:
        log = log or self.log
        return f"{self.step} failed: {self.reason}" + (f"; log: {log}" if log else "")


@dataclass
class Tools:
    vivado: str
    vivado_version: str
    xilinx_vivado: str
    vitis_hls: str | None = None
    xilinx_hls: str | None = None
    finn_hlslib: str | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def tool_path(name: str) -> str | None:
    """Where FINN will find a Xilinx tool: $FINN_TOOL_DIR_OVERRIDE/<name>, else PATH."""
    override = os.environ.get("FINN_TOOL_DIR_OVERRIDE")
    return shutil.which(str(Path(override) / name) if override else name)


def _version(root: str, exe: str, name: str) -> str:
    m = _VERSION.search(root)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    try:  # an installation outside the usual <...>/<tool>/<version> layout
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=300).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    m = _VERSION.search(out)
    if not m:
        raise FlowError(f"cannot tell the {name} version from its path {root} or `{exe} -version`; "
                        f"qnnflow bitstream needs {name} {_SUPPORTED_TEXT}")
    return f"{m.group(1)}.{m.group(2)}"


def finn_deps() -> Path:
    """FINN's dependency folder (finn-hlslib, board files): $FINN_DEPS or FINN's default."""
    from finn.interface.settings import FINNSettings

    return FINNSettings.init(flow_config=Path("dummy.yaml"), auto_set_environment_vars=False).finn_deps


def check_tools(hls_layers: list[str]) -> Tools:
    """The vendor tools `qnnflow bitstream` needs, or a FlowError naming the first one
    missing and what to set. Runs nothing but `vivado -version` (only where the version
    is not in XILINX_VIVADO's path)."""
    root = os.environ.get("XILINX_VIVADO", "")
    if not root:
        raise FlowError(f"Vivado not found: XILINX_VIVADO is not set; qnnflow bitstream needs Vivado {_SUPPORTED_TEXT} "
                        f"(source <Xilinx>/Vivado/<version>/settings64.sh, {DOCKER_HINT})")
    if not Path(root).is_dir():
        raise FlowError(f"XILINX_VIVADO={root} is not a folder; point it at a Vivado {_SUPPORTED_TEXT} installation "
                        "(source its settings64.sh)")
    vivado = tool_path("vivado")
    if vivado is None:
        where = os.environ.get("FINN_TOOL_DIR_OVERRIDE")
        raise FlowError(f"vivado is not on PATH (XILINX_VIVADO={root}); add $XILINX_VIVADO/bin to PATH "
                        "(source $XILINX_VIVADO/settings64.sh)" if not where else
                        f"vivado is not in FINN_TOOL_DIR_OVERRIDE={where}; put it there or unset the variable")
    version = _version(root, vivado, "Vivado")
    if version not in SUPPORTED_VIVADO:
        raise FlowError(f"Vivado {version} is not supported: FINN (finn-plus 1.6.1) supports Vivado {' and '.join(SUPPORTED_VIVADO)}; "
                        "set XILINX_VIVADO and PATH to one of those (source its settings64.sh)")
    tools = Tools(vivado=vivado, vivado_version=version, xilinx_vivado=root)
    if not hls_layers:
        return tools
    layers = ", ".join(hls_layers[:3]) + (", ..." if len(hls_layers) > 3 else "")
    if not _VERSION.search(root):
        raise FlowError(f"the build has HLS layers ({layers}); FINN's HLS step reads the Vivado version from "
                        f"XILINX_VIVADO's path, and {root} has none: use the installation's own path "
                        f"(e.g. /tools/Xilinx/Vivado/{version})")
    hls_root = os.environ.get("XILINX_HLS", "")
    hls_home = "Vitis_HLS/2022.2" if version == "2022.2" else f"Vitis/{version}"
    if not hls_root or not Path(hls_root).is_dir():
        what = "XILINX_HLS is not set" if not hls_root else f"XILINX_HLS={hls_root} is not a folder"
        raise FlowError(f"the build has HLS layers ({layers}) and Vitis HLS is not found: {what}; "
                        f"source <Xilinx>/{hls_home}/settings64.sh")
    hls = tool_path("vitis_hls")
    if hls is None:
        raise FlowError(f"the build has HLS layers ({layers}) and vitis_hls is not on PATH (XILINX_HLS={hls_root}); "
                        "add $XILINX_HLS/bin to PATH (source its settings64.sh)")
    hls_version = _version(hls_root, hls, "Vitis HLS")
    if hls_version != version:
        raise FlowError(f"Vitis HLS {hls_version} with Vivado {version}: use the same version of both "
                        f"(source <Xilinx>/{hls_home}/settings64.sh)")
    hlslib = finn_deps() / "finn-hlslib"
    if not hlslib.is_dir():
        raise FlowError(f"the build has HLS layers ({layers}) and finn-hlslib is not in {hlslib.parent}; set FINN_DEPS "
                        "to a folder holding finn-hlslib (the docker image has it, docker/README.md)")
    tools.vitis_hls, tools.xilinx_hls, tools.finn_hlslib = hls, hls_root, str(hlslib)
    return tools


@contextlib.contextmanager
def vendor_env(finn_dir: Path, jobs: int):
    """FINN's settings for the vendor steps: its build folder (Vivado projects), FINN_RTLLIB
    (FINN's TCL reads $::env(FINN_RTLLIB)) and the number of parallel jobs."""
    from finn.util.settings import get_settings

    from ..finn_compat import finn_build_dir

    saved = {k: os.environ.get(k) for k in ("FINN_RTLLIB", "NUM_DEFAULT_WORKERS")}
    with finn_build_dir(finn_dir):
        os.environ["NUM_DEFAULT_WORKERS"] = str(jobs)
        os.environ["FINN_RTLLIB"] = str(get_settings().finn_rtllib)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _reason(exc: BaseException) -> str:
    """FINN's exception as one short line (paths shortened to their last part: the log is named separately)."""
    text = " ".join(str(exc).split())
    text = re.sub(r"(?:/[\w.+-]+)+/([\w.+-]+)", r"\1", text)
    return (text[:240] + " ...") if len(text) > 240 else text or type(exc).__name__


def _newest(folder: str | None, pattern: str) -> Path | None:
    found = sorted(Path(folder).glob(pattern), key=lambda p: p.stat().st_mtime) if folder else []
    return found[-1] if found else None


def hls_synth(model, part: str, jobs: int):
    """Vitis HLS on every HLS layer (FINN's HLSSynthIP); their C++ comes from PrepareIP."""
    from finn.transformation.fpgadataflow.hlssynth_ip import HLSSynthIP
    from qonnx.custom_op.registry import getCustomOp

    try:
        return model.transform(HLSSynthIP(part, num_workers=jobs))
    except Exception as exc:  # noqa: BLE001 - FINN raises several types; all mean the tool failed
        logs = [Path(getCustomOp(n).get_nodeattr("code_gen_dir_ipgen")) / "vitis_hls.log"
                for n in model.graph.node if n.op_type.endswith("_hls")]
        raise VivadoError("Vitis HLS synthesis (FINN HLSSynthIP)", _reason(exc), logs[0] if logs else None) from None


def stitched_ip(model, part: str, clk_ns: float, jobs: int, ip_name: str = "qnnflow_accel"):
    """Every layer into one Vivado IP (FINN's CreateStitchedIP); checks its interfaces are
    what the shell connects: one input and one output stream, no AXI-lite or AXI-MM."""
    import json

    from finn.transformation.fpgadataflow.create_stitched_ip import CreateStitchedIP

    try:
        model = model.transform(CreateStitchedIP(part, clk_ns, ip_name=ip_name, synth_jobs=jobs))
    except Exception as exc:  # noqa: BLE001
        proj = _newest(os.environ.get("FINN_BUILD_DIR"), "vivado_stitch_proj_*")  # FINN's project folder
        raise VivadoError("stitched IP (FINN CreateStitchedIP)", _reason(exc),
                          proj / "vivado.log" if proj else None) from None
    ifnames = json.loads(model.get_metadata_prop("vivado_stitch_ifnames") or "{}")
    extra = [n for kind in ("axilite", "aximm") for n in ifnames.get(kind, [])]
    if extra or len(ifnames.get("s_axis", [])) != 1 or len(ifnames.get("m_axis", [])) != 1:
        raise FlowError(f"the stitched IP has interfaces the shell cannot connect ({ifnames}); "
                        "qnnflow's shell takes one input and one output stream (no runtime-writable weights)")
    return model


def ip_repos(model) -> list[str]:
    """The IP repositories the shell project needs: the stitched IP, HLS layers' IPs and
    FINN's memstream (FINN's collect_ip_dirs), with $::env(FINN_RTLLIB) spelt out."""
    from finn.transformation.fpgadataflow.make_zynq_proj import collect_ip_dirs
    from finn.util.settings import get_settings

    dirs = collect_ip_dirs(model, model.get_metadata_prop("vivado_stitch_proj"))
    rtllib = str(get_settings().finn_rtllib)
    return list(dict.fromkeys(d.replace("$::env(FINN_RTLLIB)", rtllib) for d in dirs))


def board_repos() -> list[str]:
    """Board-file folders: $QNNFLOW_BOARD_FILES (os.pathsep-separated) and FINN_DEPS/board_files."""
    found = [p for p in os.environ.get("QNNFLOW_BOARD_FILES", "").split(os.pathsep) if p]
    try:
        found.append(str(finn_deps() / "board_files"))
    except Exception:  # noqa: BLE001 - no FINN settings: no board files from there
        pass
    return [p for p in found if Path(p).is_dir()]


def run_vivado(tcl: Path, cwd: Path, step: str, timeout_s: float | None = None) -> Path:
    """vivado -mode batch -source TCL in `cwd`; returns the log. Raises VivadoError."""
    log = cwd / "vivado.log"
    vivado = tool_path("vivado") or "vivado"
    cmd = [vivado, "-mode", "batch", "-notrace", "-source", str(tcl), "-log", str(log),
           "-journal", str(cwd / "vivado.jou")]
    (cwd / "vivado.cmd").write_text(" ".join(cmd) + "\n")
    try:
        with open(cwd / "vivado.stdout", "w") as out:
            proc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise VivadoError(step, f"Vivado ran past {timeout_s:.0f} s", log) from None
    except OSError as exc:
        raise VivadoError(step, f"could not start {vivado}: {exc}", None) from None
    if proc.returncode != 0:
        text = (log if log.is_file() else cwd / "vivado.stdout").read_text(errors="replace")
        errors = [ln.strip() for ln in text.splitlines() if ln.startswith(("ERROR:", "CRITICAL WARNING:"))]
        raise VivadoError(step, errors[0] if errors else f"vivado exited with status {proc.returncode}",
                          log if log.is_file() else cwd / "vivado.stdout")
    return log


def zynq_bitstream(model, plan, board, proj_dir: Path, jobs: int) -> dict[str, Path]:
    """The shell project around the stitched IP, through to the bitstream (hw/shell.py's TCL).
    Returns the paths of bit, hwh, utilization and timing reports, and the log."""
    from hw.shell import zynq_shell_tcl

    proj_dir.mkdir(parents=True, exist_ok=True)
    outputs = {"bit": proj_dir / "qnnflow.bit", "hwh": proj_dir / "qnnflow.hwh",
               "utilization": proj_dir / "utilization.rpt", "timing": proj_dir / "timing.rpt"}
    tcl = zynq_shell_tcl(plan, board, accel_vlnv=model.get_metadata_prop("vivado_stitch_vlnv"),
                         ip_repos=ip_repos(model), board_repos=board_repos(), jobs=jobs,
                         outputs={k: str(v) for k, v in outputs.items()})
    (proj_dir / "shell.tcl").write_text(tcl)
    step = f"bitstream (Vivado synthesis and implementation for {board.name})"
    log = run_vivado(proj_dir / "shell.tcl", proj_dir, step)
    missing = [k for k in ("bit", "hwh") if not outputs[k].is_file()]
    if missing:
        raise VivadoError(step, f"Vivado exited without writing {', '.join(outputs[k].name for k in missing)}", log)
    return {**outputs, "log": log}
