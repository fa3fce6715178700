"""The article as a book: MyST Markdown on Sphinx (``myst_nb``, ``sphinx_book_theme``, ``sphinxcontrib-bibtex``,
MathJax served locally), built from ``paper/paper.md`` and the generated tables, figures and values.

    python -m advmri.report.book           # -> paper/_build/html/index.html and paper/_build/pdf/paper.pdf

Staging (``paper/_build/src``): every ``{{value:name}}`` is replaced by the value the analysis computed
(``values-*.json``; a missing one stops the build), every ``{{table:name}}`` becomes a numbered table
(``tab-<name>``; tables wider than :data:`MAX_COLUMNS` go to the appendix), every figure a numbered static
figure (``fig-<name>``) with its interactive plotly version beside it (plotly.js served locally). The executed
notebooks (``results/notebooks``, else the paired sources without outputs) are chapters. Sphinx runs with
warnings as errors. The PDF is the article page printed by a headless chromium (Playwright), so MathJax
typesets it and no TeX is needed; without chromium the PDF step is skipped with a message.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from advmri.report.values import fill_values
from advmri.util.errors import UserError, prog
from advmri.util.errors import cli as _cli_wrapper
from advmri.util.paths import project_path
from advmri.util.provenance import ROOT, lib_version

__all__ = ["CLIS", "MAX_COLUMNS", "build_book", "error_kinds", "hand_typed_numbers", "print_pdf", "stage"]

# the command-line entry points whose --help the CLI reference shows (generated at build time: it cannot drift)
CLIS = (
    "advmri.app.cli",
    "advmri.app.benchmark",
    "advmri.report.leaderboard",
    "advmri.app.pipeline",
    "advmri.experiments.sweep",
    "advmri.app.attack",
    "advmri.models.train",
    "advmri.experiments.verify",
    "advmri.experiments.recontrol",
    "advmri.app.explore",
    "advmri.app.lab",
    "advmri.report.book",
    "advmri.data.synth",
    "advmri.report.modelcard",
)

MAX_COLUMNS = 9  # wider tables are set in the appendix
NOTEBOOKS = (
    "01_data",
    "02_models",
    "03_noise_attack",
    "04_rotation_attack",
    "05_analysis",
    "06_explorer",
    "07_beyond",
    "08_your_model",
)
CAPTIONS = {
    "quality": "Reconstruction quality on the held-out test volumes (whole image and clean box metrics).",
    "primary": "The primary claims: paired differences in box PSNR (dB), Holm-adjusted p-values, simultaneous "
    "intervals at the Bonferroni level.",
    "small_boxes": "Box SSIM of the boxes of at least 7 pixels and of the grown (smaller) boxes.",
    "noise": "Adversarial k-space noise: box and image metrics per model, acceleration and budget.",
    "noise_paired": "Adversarial minus random noise, paired per box (volume bootstrap intervals).",
    "noise_per_label": "Adversarial noise per pathology label (exploratory).",
    "rotation": "Adversarial rotation: worst and random angle per bound.",
    "rotation_zero_vs_clean": "The rotation pipeline at 0 degrees against the clean reconstruction.",
    "interpolation": "The rotation effect under three interpolations (exploratory).",
    "rotation_paired": "Worst minus random rotation, paired per box.",
    "rotation_per_label": "Adversarial rotation per pathology label (exploratory).",
    "erasure": "Erasure and hallucination rates against the random control (exact McNemar tests).",
    "classical": "Networks and classical reconstructions under the same attacks: drop of box SSIM.",
    "stronger": "Stronger attacks at the same budget (restarts, momentum, unknown mask).",
    "precision": "bfloat16 against float32 autocast: clean and attacked box MSE.",
    "steps": "Steps and step size of the authors' update at the same budget.",
    "budget_law": "Attained budget fraction of the authors' update against the coil count.",
}
FIGURES = {
    "noise_box_ssim_8x": "Box SSIM against the noise budget $\\epsilon$ at 8x: adversarial (solid) and the random "
    "control of equal delivered energy (dashed), mean and 95% volume-bootstrap interval.",
    "noise_box_ssim_4x": "Box SSIM against the noise budget $\\epsilon$ at 4x (as in the 8x figure).",
    "noise_box_psnr_8x": "Box PSNR (dB) against the noise budget $\\epsilon$ at 8x, the metric of the primary claims.",
    "rotation_box_ssim_8x": "Box SSIM against the rotation bound at 8x: the worst angle within the bound (solid) "
    "and random angles within it (dashed).",
    "rotation_box_ssim_4x": "Box SSIM against the rotation bound at 4x (as in the 8x figure).",
    "erasure_noise": "Erasure and hallucination rates under adversarial noise and under the random control.",
    "erasure_rotation": "Erasure and hallucination rates under adversarial and random rotation.",
    "classical_noise": "Drop of box SSIM under adversarial noise: networks and CG-SENSE on the same boxes.",
    "classical_rotation": "Drop of box SSIM under adversarial rotation: networks and CG-SENSE on the same boxes.",
    "budget_law": "Attained fraction of the budget of the authors' update against the coil count, with the fitted "
    "law $c/\\sqrt{C}$.",
}
PLOTLY_CDN = re.compile(r'<script[^>]*src="https://cdn\.plot\.ly/[^"]*"[^>]*></script>')
CITE_PLAIN = re.compile(r"\{cite:[pt]\}`([^`]+)`")
ROLE_PLAIN = re.compile(r"\{(?:eq|numref|ref)\}`([^`]+)`")


def _table(name: str, tables: Path) -> tuple[str, int]:
    """Numbered MyST tables of ``tables/<name>.md`` (``tab-<name>``, then ``tab-<name>-2``, ... for the further
    pipe tables of the file; the text before each joins its caption, the text after the last follows it) and the
    largest number of columns."""
    p = tables / f"{name}.md"
    if not p.is_file():
        raise UserError(
            f"{p}: table {name!r} is not generated (run the analysis: python -m advmri.app.pipeline --from analysis)"
        )
    blocks: list[tuple[str, list[str]]] = []  # (text before, pipe lines)
    text: list[str] = []
    for ln in p.read_text().strip().splitlines():
        if ln.lstrip().startswith("|"):
            if text or not blocks or blocks[-1][1] == []:
                blocks.append((" ".join(text), []))
                text = []
            blocks[-1][1].append(ln)
        elif ln.strip():
            text.append(ln.strip())
    if not blocks:
        raise UserError(f"{p}: no pipe table in it")
    out, cols = [], 0
    for k, (lead, rows) in enumerate(blocks):
        label = f"tab-{name}" if k == 0 else f"tab-{name}-{k + 1}"
        caption = (CAPTIONS.get(name, name.replace("_", " ")) + (f" {lead}" if lead else "")).strip()
        body = "\n".join(rows)
        out.append(f":::{{table}} {caption}\n:name: {label}\n:align: left\n\n{body}\n:::\n")
        cols = max(cols, rows[0].count("|") - 1)
    return "\n".join(out) + ("\n" + " ".join(text) + "\n" if text else ""), cols


def _figure(alt: str, name: str, figures: Path, static: Path) -> str:
    """A numbered static figure and, beside it, its interactive plotly version (plotly.js served locally)."""
    png, html = figures / f"{name}.png", figures / f"{name}.html"
    if not png.is_file():
        raise UserError(f"{png}: figure {name!r} is not generated (run the analysis)")
    shutil.copy(png, static / png.name)
    caption = FIGURES.get(name) or f"{alt[:1].upper() + alt[1:]}."
    out = f":::{{figure}} _static/figures/{png.name}\n:name: fig-{name}\n:width: 90%\n\n{caption}\n:::\n"
    if html.is_file():
        (static / html.name).write_text(
            PLOTLY_CDN.sub('<script charset="utf-8" src="plotly.min.js"></script>', html.read_text())
        )
        out += (
            f'\n<details class="interactive-figure"><summary>Interactive version (plotly)</summary>'
            f'<iframe class="plotly-figure" src="_static/figures/{html.name}" width="100%" height="420" '
            f'title="{alt}"></iframe></details>\n'
        )
    return out


def _provenance(paper_dir: Path) -> str:
    rows = []
    for p in sorted((paper_dir / "tables").glob("*provenance.json")):
        st = json.loads(p.read_text())
        rows.append(
            f"- `{p.name}`: sweep `{st.get('sweep', '?')}`, runs "
            + ", ".join(f"`{r}`" for r in st.get("runs", []))
            + (
                f"; result code versions {', '.join(f'`{v}`' for v in st.get('result_code_versions', []))}"
                if st.get("result_code_versions")
                else ""
            )
        )
    from advmri.util.provenance import dirty_results

    dirty = dirty_results(paper_dir / "tables")
    warn = f"**Results from uncommitted code (--allow-dirty): {', '.join(dirty)}.**\n\n" if dirty else ""
    return warn + (
        f"Built by `python3 tasks.py paper` from code version `{lib_version()}`. Every result table is a "
        "verified run record (`results/<sweep>/<run id>/`: `params.json`, `results.csv` with the sha256 in "
        "`status.json`, `results.meta.json` with the checkpoint's sha256).\n\n" + "\n".join(rows) + "\n"
    )


def _myst(text: str, paper_dir: Path, static: Path, setup_text: str) -> tuple[str, list[str]]:
    """The article in MyST: values, figures and tables expanded; wide tables returned for the appendix."""
    text = fill_values(text, paper_dir / "tables", paper_dir / "paper.md", ROOT / "models")
    text = text.replace("{{pdf}}", '<a class="reference download" href="_static/paper.pdf">PDF</a>')
    text = text.replace("{{setup}}", setup_text or read_setup_text(paper_dir))
    text = text.replace("{{stamp}}", "Provenance of every number: {ref}`appendix-provenance`.")
    wide: list[str] = []

    def table(m: re.Match) -> str:
        body, cols = _table(m.group(1), paper_dir / "tables")
        if cols <= MAX_COLUMNS:
            return body
        wide.append(body)
        return f"(Table {{numref}}`tab-{m.group(1)}`, in the appendix: {cols} columns.)\n"

    text = re.sub(r"\{\{table:([\w-]+)\}\}", table, text)
    text = re.sub(
        r"!\[([^\]]*)\]\(\{\{figure:([\w-]+)\}\}\)",
        lambda m: _figure(m.group(1), m.group(2), paper_dir / "figures", static),
        text,
    )
    text = re.sub(r"\(table `([\w-]+)`\)", r"(table {numref}`tab-\1`)", text)
    text = re.sub(r"table `([\w-]+)`", r"table {numref}`tab-\1`", text)
    more = "guide/index\ncli\napi/index\n" if (paper_dir / "guide").is_dir() else ""
    text += (
        "\n## References\n\n```{bibliography}\n```\n\n```{toctree}\n:hidden:\n:caption: More\n\n"
        f"{more}notebooks\nappendix\n```\n"
    )
    return text, wide


def read_setup_text(paper_dir: Path) -> str:
    """The experimental set-up paragraph the analysis wrote (``tables/setup.md``), or nothing."""
    p = paper_dir / "tables" / "setup.md"
    return p.read_text() if p.is_file() else ""


def _notebooks(src: Path, executed: Path) -> str:
    """Copy the notebooks (executed when the main job ran them) and return their toctree."""
    (src / "notebooks").mkdir(exist_ok=True)
    names = []
    for name in NOTEBOOKS:
        done = executed / f"{name}.ipynb"
        nb = done if done.is_file() else ROOT / "notebooks" / f"{name}.ipynb"
        if nb.is_file():
            shutil.copy(nb, src / "notebooks" / f"{name}.ipynb")
            names.append(f"notebooks/{name}")
    return "\n".join(names)


_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def _local_links(text: str) -> str:
    """Links into the repository (not pages of the book) as ``text (path)``; images dropped (the guide
    pages come from the README, whose links are relative to the repository root)."""

    def sub(m: re.Match) -> str:
        bang, label, target = m.groups()
        if target.startswith(("http://", "https://", "#")) or target.endswith(".md") and "/" not in target:
            return m.group(0)
        return "" if bang else f"{label} (`{target.lstrip('./')}`)"

    return _LINK.sub(sub, text)


def error_kinds() -> list[type[UserError]]:
    """Every :class:`advmri.util.errors.UserError` kind the package defines (its modules imported), sorted by name."""
    import importlib
    import pkgutil

    import advmri
    from advmri.util.errors import UserError

    for m in pkgutil.walk_packages(advmri.__path__, "advmri."):
        if not m.name.endswith("__main__"):
            importlib.import_module(m.name)

    def walk(c: type[UserError]) -> list[type[UserError]]:
        return [c] + [k for s in c.__subclasses__() for k in walk(s)]

    return sorted({c for c in walk(UserError) if c.__module__.startswith("advmri")}, key=lambda c: c.__name__)


def _troubleshooting() -> str:
    rows = [
        "# Troubleshooting",
        "",
        "Every error a command prints is one line, `error: <file or parameter>: <what is "
        "wrong>`, exit status 2 (`--debug` shows the traceback). The kinds, with their cause and fix, generated from "
        "the classes that raise them:",
        "",
    ]
    for c in error_kinds():
        rows += [
            f"## `{c.__name__}`",
            "",
            f"Defined in `{c.__module__}`. **Cause:** {' '.join((c.__doc__ or '').split())}",
            "",
            f"**Fix:** {c.fix}",
            "",
        ]
    rows += [
        "## Anything else",
        "",
        "`error: internal error <Type>: <message> (at <file>:<line>; --debug shows the "
        "traceback)` is a bug of advmri, not of the input: please report it with the `--debug` output.",
        "",
    ]
    return "\n".join(rows)


# run in one child process: each command's ``--help`` as ``python -m <module> --help`` prints it, the imports shared
_HELP_SCRIPT = """
import contextlib, io, json, os, runpy, sys, warnings
os.environ["COLUMNS"] = "100"
warnings.simplefilter("ignore")
out = {}
for mod in sys.argv[1:]:
    buf = io.StringIO()
    sys.argv = [mod, "--help"]
    code = None
    with contextlib.redirect_stdout(buf):
        try:
            runpy.run_module(mod, run_name="__main__", alter_sys=True)
        except SystemExit as e:
            code = e.code
    out[mod] = [code, buf.getvalue()]
print(json.dumps(out))
"""


def _help_texts(mods: tuple[str, ...]) -> list[str]:
    """Each module's ``python -m <module> --help`` output, from one child process."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    p = subprocess.run(
        [sys.executable, "-c", _HELP_SCRIPT, *mods], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        raise UserError(f"--help of the commands failed: {(p.stderr or p.stdout).strip().splitlines()[-1:]}")
    got = json.loads(lines[-1])
    bad = [m for m in mods if got.get(m, [1])[0] not in (0, None)]
    if bad:
        raise UserError(f"python -m {bad[0]} --help failed (exit {got[bad[0]][0]})")
    return [got[m][1].strip() for m in mods]


def _cli_reference() -> str:
    helps = _help_texts(CLIS)
    out = [
        "# Command-line reference",
        "",
        "Generated at build time from each command's own `--help`, so it "
        "cannot drift from it. Every command prints errors as one line and exits 2 (`--debug`: traceback).",
        "",
    ]
    for mod, text in zip(CLIS, helps, strict=True):
        out += [f"## `python -m {mod}`", "", "```text", text, "```", ""]
    return "\n".join(out)


def _api_reference(src: Path) -> str:
    """One page per package (layer) under ``api/``, each module a section with its autodoc; returns the index page.
    (One page per module made 67 pages, and every page of the book carries the whole navigation tree.)"""
    import importlib
    import pkgutil

    import advmri

    (src / "api").mkdir(exist_ok=True)
    names = sorted(m.name for m in pkgutil.walk_packages(advmri.__path__, "advmri.") if not m.name.endswith("__main__"))
    packages = ["advmri"] + [n for n in names if hasattr(importlib.import_module(n), "__path__")]
    rows, toc = [], []
    for pkg in packages:
        members = [n for n in names if n.rpartition(".")[0] == pkg and n not in packages]
        body = [f"# `{pkg}`\n", _first_line(pkg) + "\n"]
        for name in members:
            auto = f".. automodule:: {name}\n   :members:\n   :show-inheritance:"
            body.append(f"(api-{name})=\n## `{name}`\n\n```{{eval-rst}}\n{auto}\n```\n")
            rows.append(f"| [`{name}`](#api-{name}) | {_first_line(name)} |")
        (src / "api" / f"{pkg}.md").write_text("\n".join(body))
        toc.append(pkg)
    return (
        "# API reference\n\nEvery module of the library, with its public functions and classes (autodoc), one page "
        "per layer. Shapes, conventions (FFT normalisation, orientation) and units are stated in the docstrings.\n\n"
        "| module | what it does |\n|---|---|\n"
        + "\n".join(rows)
        + "\n\n```{toctree}\n:hidden:\n\n"
        + "\n".join(toc)
        + "\n```\n"
    )


def _first_line(name: str) -> str:
    """The first line of a module's docstring, for a table cell."""
    import importlib

    doc = importlib.import_module(name).__doc__ or ""
    return ((doc.strip().splitlines() or [""])[0]).replace("``", "`").replace("|", "/")


def _guide(paper_dir: Path, src: Path) -> None:
    (src / "guide").mkdir(exist_ok=True)
    bench = ROOT / "bench" / "RESULTS.md"
    for f in sorted((paper_dir / "guide").glob("*.md")):
        text = f.read_text()
        if f.name == "performance.md" and bench.is_file():  # the measured figures, with date and machine
            text += "\n## From `bench/RESULTS.md`\n\n" + re.sub(r"(?m)^#+ ", "### ", bench.read_text())
        (src / "guide" / f.name).write_text(_local_links(text))
    (src / "guide" / "troubleshooting.md").write_text(_troubleshooting())


def stage(
    paper_dir: str | Path = ROOT / "paper", setup_text: str = "", executed: str | Path = ROOT / "results" / "notebooks"
) -> Path:
    """Write the book's sources to ``paper_dir/_build/src`` (see the module docstring)."""
    import plotly

    paper_dir = project_path(paper_dir)
    src = paper_dir / "_build" / "src"
    shutil.rmtree(src, ignore_errors=True)
    static = src / "_static" / "figures"
    static.mkdir(parents=True)
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", static / "plotly.min.js")
    for f in ("conf.py", "references.bib", "book.css"):
        shutil.copy(paper_dir / f, src / ("_static/" + f if f.endswith(".css") else f))
    article, wide = _myst((paper_dir / "paper.md").read_text(), paper_dir, static, setup_text)
    (src / "index.md").write_text(article)
    appendix = (paper_dir / "appendix.md").read_text()
    appendix = appendix.replace("{{provenance}}", _provenance(paper_dir)).replace("{{wide_tables}}", "\n".join(wide))
    (src / "appendix.md").write_text(appendix)
    toc = _notebooks(src, project_path(executed))
    (src / "notebooks.md").write_text((paper_dir / "notebooks.md").read_text().replace("{{notebooks}}", toc))
    if (paper_dir / "guide").is_dir():
        _guide(paper_dir, src)
        (src / "cli.md").write_text(_cli_reference())
        (src / "api").mkdir(exist_ok=True)
        (src / "api" / "index.md").write_text(_api_reference(src))
    return src


PHASE = re.compile(r"^(reading sources|writing output)\.\.\. \[\s*(\d+)%\]")


def _sphinx(src: Path, html: Path, log=print, every: float = 5.0) -> None:
    """Build the HTML book (warnings are errors), with a progress line at most every ``every`` seconds (Sphinx's
    own ``reading sources... [ 40%]`` / ``writing output...`` lines); one line naming the first warning on failure."""
    import tempfile
    import time

    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-j", "1", str(src), str(html)]
    t0 = shown = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        last = ""
        for line in p.stdout or ():
            m = PHASE.match(line)
            if m and (time.perf_counter() - shown >= every or m.group(1) != last):
                log(f"   book: {m.group(1)} {m.group(2)}% ({time.perf_counter() - t0:.0f} s)")
                shown, last = time.perf_counter(), m.group(1)
        rc = p.wait()
        err.seek(0)
        problems = [ln for ln in err.read().splitlines() if ln.strip()]
    if rc != 0:
        raise UserError(
            f"{src}: the book build failed with {len(problems)} warning(s)/error(s); first: "
            f"{problems[0] if problems else rc}"
        )


def build_book(
    paper_dir: str | Path = ROOT / "paper",
    setup_text: str = "",
    pdf: bool = True,
    executed: str | Path = ROOT / "results" / "notebooks",
) -> dict[str, Path]:
    """Stage, build the HTML book with Sphinx (warnings are errors), print the article to PDF."""
    paper_dir = project_path(paper_dir)
    src = stage(paper_dir, setup_text, executed)
    html = paper_dir / "_build" / "html"
    _sphinx(src, html)
    out = {"html": html / "index.html"}
    if pdf:
        made = print_pdf(html / "index.html", paper_dir / "_build" / "pdf" / "paper.pdf")
        if made is not None:
            shutil.copy(made, html / "_static" / "paper.pdf")  # the book's download link
            out["pdf"] = made
    return out


def _chromium() -> str | None:
    return os.environ.get("ADVMRI_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def print_pdf(page: Path, out: Path) -> Path | None:
    """Print a built page to PDF in headless chromium once MathJax has typeset it (print stylesheet: static
    figures, no navigation). None, with a message, when there is no chromium."""
    exe = _chromium()
    if exe is None:
        print(
            "book: no chromium here (apt-get install chromium, or set ADVMRI_CHROMIUM): the PDF was not made",
            file=sys.stderr,
        )
        return None
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        try:
            tab = browser.new_page()
            tab.goto(page.resolve().as_uri(), wait_until="load")
            tab.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=60000)
            tab.evaluate("MathJax.startup.promise")
            tab.emulate_media(media="print")
            tab.pdf(
                path=str(out),
                format="A4",
                print_background=True,
                margin=dict(top="18mm", bottom="18mm", left="16mm", right="16mm"),
            )
        finally:
            browser.close()
    return out


_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
_RESULT_LIKE = re.compile(r"(?<![\w.\-])[+-]?(\d+\.\d{2,}|\d+(?:\.\d+)?\s?%)")


def hand_typed_numbers(text: str) -> list[str]:
    """Result-like numbers (a decimal with at least two decimals, or a percentage) typed into Markdown prose,
    outside math, code and placeholders: each with some context."""
    t = _CODE.sub(" ", _MATH.sub(" ", text))
    t = re.sub(r"\{\{[^}]+\}\}", " ", t)
    t = re.sub(r"\]\([^)]*\)", "]", t)  # link targets
    return [t[max(0, m.start() - 40) : m.end() + 10].replace("\n", " ") for m in _RESULT_LIKE.finditer(t)]


def plain_citations(text: str) -> str:
    """``{cite:p}`a,b``` -> ``[a, b]`` and ``{eq}`x``` -> ``(x)`` for the plain Markdown rendering of the article
    (the book resolves them)."""
    text = CITE_PLAIN.sub(lambda m: "[" + ", ".join(k.strip() for k in m.group(1).split(",")) + "]", text)
    return ROLE_PLAIN.sub(lambda m: f"({m.group(1)})", text)


@_cli_wrapper
def main(argv: list[str] | None = None) -> int:
    """``python -m advmri.report.book``: build the book (HTML and, with chromium, the PDF) from the committed
    results."""
    import argparse

    ap = argparse.ArgumentParser(prog=prog("advmri.report.book"), description=(main.__doc__ or "").split(": ", 1)[-1])
    ap.add_argument("--paper-dir", default=str(ROOT / "paper"), help="the article's sources (default: paper/)")
    ap.add_argument("--no-pdf", action="store_true", help="skip printing the PDF")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    a = ap.parse_args(argv)
    for k, v in build_book(a.paper_dir, pdf=not a.no_pdf).items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main(None))
