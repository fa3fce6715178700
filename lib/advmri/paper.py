"""Build the paper: fill ``paper/paper.md`` from generated tables/figures -> ``paper/build/``.

Output: ``paper/build/paper.md`` (self-contained Markdown) and ``paper/build/paper.html``;
``paper/build/paper.pdf`` too when pandoc and a TeX engine are installed (a fresh machine has
neither, so the HTML is the documented fallback and the build says so).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import markdown

from advmri.errors import UserError
from advmri.paths import project_path
from advmri.provenance import ROOT, code_version, is_dirty
from advmri.values import load_values


def build(paper_dir: str | Path = ROOT / "paper", setup_text: str = "") -> dict[str, Path]:
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
    values = load_values(paper_dir / "tables")

    def value(m):
        if m.group(1) not in values:
            raise UserError(f"{paper_dir / 'paper.md'}: {{{{value:{m.group(1)}}}}} is not computed by the analysis "
                            f"(values-*.json in {paper_dir / 'tables'}); rerun it or fix the name")
        return values[m.group(1)]

    text = src.replace("{{stamp}}", stamp).replace("{{setup}}", setup_text or _setup_text(paper_dir))
    text = re.sub(r"\{\{value:([\w.-]+)\}\}", value, text)
    text = re.sub(r"\{\{table:([\w-]+)\}\}", table, text)
    text = re.sub(r"\{\{figure:([\w-]+)\}\}", figure, text)
    md = out / "paper.md"
    md.write_text(text)
    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    html = out / "paper.html"
    html.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>advmri paper</title>"
        "<script>MathJax={tex:{inlineMath:[['$','$']]}}</script>"
        "<script async src='https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js'></script>"
        "<style>body{max-width:52em;margin:auto;font-family:sans-serif;line-height:1.45}"
        "table{border-collapse:collapse;font-size:80%}td,th{border:1px solid #ccc;padding:2px 5px}"
        "img{max-width:100%}</style></head><body>" + body + "</body></html>"
    )
    res = {"md": md, "html": html}
    if shutil.which("pandoc") and (shutil.which("pdflatex") or shutil.which("xelatex")):
        pdf = out / "paper.pdf"
        subprocess.run(["pandoc", str(md), "-o", str(pdf), "--resource-path", str(out)], check=False)
        if pdf.is_file():
            res["pdf"] = pdf
    else:
        print("paper: no pandoc + TeX engine here; wrote HTML and Markdown instead of PDF "
              f"({html.relative_to(ROOT) if html.is_relative_to(ROOT) else html})")
    return res


def _setup_text(paper_dir: Path) -> str:
    p = paper_dir / "tables" / "setup.md"
    return p.read_text() if p.is_file() else ""


if __name__ == "__main__":
    print(build())
    sys.exit(0)
