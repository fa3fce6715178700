"""The article as plain Markdown: ``paper/paper.md`` filled from the generated tables, figures and values ->
``paper/build/paper.md`` (readable on a code host; citations as ``[key]``). The article itself, HTML book and PDF,
is built by :mod:`advmri.report.book` from the same source.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from advmri.report.book import plain_citations, read_setup_text
from advmri.report.values import fill_values
from advmri.util.paths import project_path
from advmri.util.provenance import ROOT, dirty_results, lib_version


def build(paper_dir: str | Path = ROOT / "paper", setup_text: str = "") -> dict[str, Path]:
    """Fill ``paper/paper.md`` -> ``paper/build/paper.md``; returns ``{'md': path}`` (see the module docstring)."""
    paper_dir = project_path(paper_dir)
    src = (paper_dir / "paper.md").read_text()
    out = paper_dir / "build"
    out.mkdir(parents=True, exist_ok=True)
    prov = paper_dir / "tables" / "provenance.json"
    st = json.loads(prov.read_text()) if prov.is_file() else {}
    stamp = f"code {lib_version()} · sweep {st.get('sweep', '?')} · runs {', '.join(st.get('runs', []))}"

    def table(m):
        p = paper_dir / "tables" / f"{m.group(1)}.md"
        return p.read_text() if p.is_file() else f"*(table {m.group(1)} not generated)*"

    def figure(m):
        for ext in ("png", "svg"):
            p = paper_dir / "figures" / f"{m.group(1)}.{ext}"
            if p.is_file():
                return f"../figures/{p.name}"
        return f"../figures/{m.group(1)}.html"

    dirty = dirty_results(paper_dir / "tables")
    if dirty:  # recorded with --allow-dirty: the reader is told
        stamp += f" · **results from uncommitted code (--allow-dirty): {', '.join(dirty)}**"
    text = (
        plain_citations(src)
        .replace("{{stamp}}", stamp)
        .replace("{{pdf}}", "[PDF](../_build/pdf/paper.pdf)")
        .replace("{{setup}}", setup_text or read_setup_text(paper_dir))
    )
    text = fill_values(text, paper_dir / "tables", paper_dir / "paper.md", ROOT / "models")
    text = re.sub(r"\{\{table:([\w-]+)\}\}", table, text)
    text = re.sub(r"\{\{figure:([\w-]+)\}\}", figure, text)
    md = out / "paper.md"
    md.write_text(text)
    return {"md": md}


if __name__ == "__main__":
    print(build())
    sys.exit(0)
