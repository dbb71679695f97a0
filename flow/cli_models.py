"""qnnflow's model-side commands: the zoo table (`qnnflow zoo`, `make zoo-table`), `qnnflow
eval` and `qnnflow compact` (flow/cli.py registers them)."""
from __future__ import annotations

from pathlib import Path

from rich.console import Console

from .errors import FlowError


def zoo_markdown(rows: list[dict]) -> str:
    """The README's zoo table (README.md holds this command's output between markers)."""
    out = ["| model | MNIST test top-1 % | target % | epochs | training s (2 cores) | command |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        name = r["name"] + ("" if r["buildable"] else " (float reference)")
        target = "-" if r["target"] is None else f"{r['target']:.2f} ({r['target_source']})"
        out.append(f"| {name} | {r['accuracy']:.2f} | {target} | {r['epochs']} | {r['train_seconds']:.0f} "
                   f"| `{r['command']}` |")
    return "\n".join(out)


def update_readme_zoo(path: str | Path = "README.md") -> None:
    """Rewrite the zoo table between README.md's markers (`make zoo-table`)."""
    import re

    from models.zoo import list_shipped

    p = Path(path)
    text, n = re.subn(r"<!-- zoo:begin -->\n.*?<!-- zoo:end -->",
                      lambda m: f"<!-- zoo:begin -->\n{zoo_markdown(list_shipped())}\n<!-- zoo:end -->",
                      p.read_text(), flags=re.S)
    if n != 1:
        raise FlowError(f"{p} has no <!-- zoo:begin --> ... <!-- zoo:end --> block")
    p.write_text(text)


def cmd_zoo(a) -> int:
    import json

    from rich.table import Table

    from models.zoo import list_shipped

    rows = list_shipped()
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    if a.markdown:
        print(zoo_markdown(rows))
        return 0
    t = Table(title="qnnflow zoo: shipped checkpoints (MNIST test top-1, float forward in PyTorch)")
    for col in ("name", "accuracy %", "epochs", "train s", "command"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"] + ("" if r["buildable"] else " (reference)"), f"{r['accuracy']:.2f}",
                  str(r["epochs"]), f"{r['train_seconds']:.0f}" if r["train_seconds"] else "-", r["command"] or "-")
    Console().print(t)
    return 0


def cmd_eval(a) -> int:
    from models import ModelError, load_checkpoint, load_mnist, parse_name, shipped_checkpoint
    from models.train import evaluate

    try:
        path = Path(a.model) if Path(a.model).suffix == ".pt" or Path(a.model).is_file() else None
        if path is None:
            parse_name(a.model)
            path = shipped_checkpoint(a.model)
        module, meta = load_checkpoint(path)
        split = load_mnist(a.split)
    except ModelError as exc:
        raise FlowError(str(exc)) from None
    acc = evaluate(module, split.x, split.y)
    key = {"test": "test_accuracy", "val": "val_accuracy"}.get(a.split)
    recorded = f"; recorded at training {meta[key]:.2f} %" if key and meta.get(key) is not None else ""
    Console().print(f"{meta.get('name', path.stem)}: MNIST {a.split} top-1 {acc:.2f} % ({len(split.y)} images; "
                    f"checkpoint {path}{recorded})")
    return 0


def cmd_compact(a) -> int:
    from models import ModelError, compact_checkpoint

    if Path(a.out).resolve() == Path(a.checkpoint).resolve():
        raise FlowError(f"--out {a.out} is the input checkpoint; write the compact one elsewhere")
    try:
        r = compact_checkpoint(a.checkpoint, a.out)
    except ModelError as exc:
        raise FlowError(str(exc)) from None
    Console().print(f"{a.out}: {r['layers']} quantized weight tensors as integer codes (the same codes), "
                    f"{r['bytes_before'] / 2**20:.2f} MiB -> {r['bytes_after'] / 2**20:.2f} MiB; scales within "
                    f"{r['max_scale_rel_diff']:.1e} (relative); MNIST test top-1 {r['test_accuracy_before']:.2f} % -> "
                    f"{r['test_accuracy']:.2f} %, {r['predictions_changed']} of 20000 test/val predictions changed")
    return 0
