"""The article as plain Markdown: ``paper/paper.md`` filled from the generated tables, figures and values ->
``paper/build/paper.md`` (readable on a code host; citations as ``[key]``). The article itself, HTML book and PDF,
is built by :mod:`advmri.book` from the same source.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


from advmri.errors import UserError
from advmri.paths import project_path
from advmri.provenance import ROOT, code_version, is_dirty
from advmri.values import from_tables, load_values
from advmri.book import plain_citations


def build(paper_dir: str | Path = ROOT / "paper", setup_text: str = "") -> dict[str, Path]:
    """Fill ``paper/paper.md`` -> ``paper/build/paper.md``; returns ``{'md': path}`` (see the module docstring)."""
    paper_dir = project_path(paper_dir)
    src = (paper_dir / "paper.md").read_text()
    out = paper_dir / "build"
    out.mkdir(parents=True, exist_ok=True)
    prov = paper_dir / "tables" / "provenance.json"
    st = json.loads(prov.read_text()) if prov.is_file() else {}
    stamp = f"code {code_version()} · sweep {st.get('sweep', '?')} · runs {', '.join(st.get('runs', []))}"

    def table(m):
        p = paper_dir / "tables" / f"{m.group(1)}.md"
        return p.read_text() if p.is_file() else f"*(table {m.group(1)} not generated)*"

    def figure(m):
        for ext in ("png", "svg"):
            p = paper_dir / "figures" / f"{m.group(1)}.{ext}"
            if p.is_file():
                return f"../figures/{p.name}"
        return f"../figures/{m.group(1)}.html"

    dirty = sorted({v for p in (paper_dir / "tables").glob("*provenance.json")
                    for v in json.loads(p.read_text()).get("result_code_versions", []) if is_dirty(v)})
    if dirty:  # recorded with --allow-dirty: the reader is told
        stamp += f" · **results from uncommitted code (--allow-dirty): {', '.join(dirty)}**"
    values = {**load_values(paper_dir / "tables"), **from_tables(paper_dir / "tables", ROOT / "models")}

    def value(m):
        if m.group(1) not in values:
            raise UserError(f"{paper_dir / 'paper.md'}: {{{{value:{m.group(1)}}}}} is not computed by the analysis "
                            f"(values-*.json in {paper_dir / 'tables'}); rerun it or fix the name")
        return values[m.group(1)]

    text = plain_citations(src).replace("{{stamp}}", stamp).replace("{{pdf}}", "[PDF](../_build/pdf/paper.pdf)").replace("{{setup}}", setup_text or _setup_text(paper_dir))
    text = re.sub(r"\{\{value:([\w.-]+)\}\}", value, text)
    text = re.sub(r"\{\{table:([\w-]+)\}\}", table, text)
    text = re.sub(r"\{\{figure:([\w-]+)\}\}", figure, text)
    md = out / "paper.md"
    md.write_text(text)
    return {"md": md}


def _setup_text(paper_dir: Path) -> str:
    p = paper_dir / "tables" / "setup.md"
    return p.read_text() if p.is_file() else ""


if __name__ == "__main__":
    print(build())
    sys.exit(0)
