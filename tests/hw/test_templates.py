"""hw/rtl/templates: the generated Verilog's text. Every placeholder of every template is
filled by its caller (a missing value is an error naming it), and what is left is Verilog
with one module per template."""
from __future__ import annotations

import re
from string import Template

import pytest

from hw.errors import HwError
from hw.verilog import TEMPLATES, render_template


def test_each_template_renders_one_module_and_refuses_a_missing_value():
    names = sorted(p.name for p in TEMPLATES.glob("*.v"))
    assert names == ["stitched_top.v", "stream_wrapper.v"]
    for name in names:
        keys = {m.group("named") or m.group("braced") for m in Template.pattern.finditer((TEMPLATES / name).read_text())
                if m.group("named") or m.group("braced")}
        text = render_template(name, **{k: "x_" + k.lower() for k in keys})
        assert "$" not in text and text.count("endmodule") == 1
        assert re.search(r"^module \S+ ", text, re.M), text[:200]
        missing = sorted(keys)[0]
        with pytest.raises(HwError, match=rf"template {name}: no value for \${missing}"):
            render_template(name, **{k: "1" for k in keys if k != missing})
