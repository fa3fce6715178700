"""The article as a book (``advmri.report.book``): built from a copy of ``paper/`` with warnings as errors, every
number glued, citations resolved, the PDF printed; then read in a real browser (Playwright + Debian chromium)
served from 127.0.0.1: math typeset, a plotly figure interactive and offline, a citation linked to the
bibliography, the PDF link resolving."""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest
from conftest import ROOT

from advmri.report.book import build_book, hand_typed_numbers
from advmri.util.errors import UserError

pytestmark = pytest.mark.slow


def _copy(tmp: Path) -> Path:
    d = tmp / "paper"
    shutil.copytree(ROOT / "paper", d, ignore=shutil.ignore_patterns("build", "_build"))
    return d


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("book")
    return build_book(_copy(tmp), executed=tmp / "no-executed-notebooks")


def test_no_result_is_typed_into_the_prose():
    src = (ROOT / "paper" / "paper.md").read_text()
    assert hand_typed_numbers(src) == []
    for typed in ("SSIM 0.824 at 8x", "a drop of 12%", "moves by 6.3 %"):  # the check can fail
        assert hand_typed_numbers(f"Prose with {typed} in it.")
    for allowed in ("$\\epsilon = 0.01$", "`torchvision==0.13`", "{{value:q_ssim_unet_8x}}", "10 steps"):
        assert hand_typed_numbers(f"Prose with {allowed} in it.") == []


def test_book_builds_warning_free_with_numbered_objects_and_citations(book):
    html = book["html"].read_text()
    assert "{{" not in html and "{cite" not in html
    cited = set(re.findall(r'<div class="citation" id="id\d+" role="doc-biblioentry">', html))
    entries = re.findall(r'role="doc-biblioentry"', html)
    assert len(entries) >= 12, len(entries)
    assert len(cited) == len(entries)
    assert re.search(r"Table \d+", html) and re.search(r"Fig(ure|\.) \d+", html)
    assert "Eq. (1)" in html  # the attack's equation, referenced from the text
    assert (book["html"].parent / "_static" / "mathjax" / "tex-chtml.js").is_file()  # MathJax served locally
    assert (
        "cdn." not in html
        and "cdn.plot.ly" not in (book["html"].parent / "_static" / "figures" / "noise_box_ssim_8x.html").read_text()
    )
    for nb in ("01_data", "03_noise_attack", "05_analysis"):
        assert (book["html"].parent / "notebooks" / f"{nb}.html").is_file()
    assert (book["html"].parent / "appendix.html").is_file()


def test_pdf_has_the_article(book):
    from pypdf import PdfReader

    assert "pdf" in book, "no PDF: chromium missing?"
    reader = PdfReader(book["pdf"])
    text = " ".join(p.extract_text() for p in reader.pages)
    assert len(reader.pages) >= 6
    for part in ("Abstract", "Introduction", "Method", "Results", "Limitations", "References"):
        assert part in text, part
    flat = " ".join(text.split()).lower()
    assert "on instabilities of deep learning in image reconstruction" in flat  # a bibliography entry
    assert "$$" not in text and "\\max" not in text  # math typeset before printing


def test_missing_value_and_citation_stop_the_build_in_one_line(tmp_path):
    d = _copy(tmp_path)
    shutil.rmtree(d / "guide")  # the article alone: the guide and references are not needed here
    src = d / "paper.md"
    good = src.read_text()
    src.write_text(good + "\nA number: {{value:no_such_value}}.\n")
    with pytest.raises(UserError, match=r"paper.md: \{\{value:no_such_value\}\} is not computed"):
        build_book(d, pdf=False, executed=tmp_path / "none")
    src.write_text(good + "\nSee {cite:p}`no_such_key_2031`.\n")
    with pytest.raises(UserError) as e:
        build_book(d, pdf=False, executed=tmp_path / "none")
    assert "no_such_key_2031" in str(e.value) and "\n" not in str(e.value)


def _chromium() -> str:
    import os

    exe = os.environ.get("ADVMRI_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("no chromium: `apt-get install chromium` (tasks.py test does it) or set ADVMRI_CHROMIUM")
    return exe


@pytest.fixture(scope="module")
def served(book):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(book["html"].parent))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_reader_sees_math_figures_citations_and_the_pdf(served):
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = b.new_page()
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(served) else None)
            page.goto(f"{served}/index.html")
            page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
            page.evaluate("MathJax.startup.promise")
            assert page.locator("mjx-container").count() > 20  # typeset
            body = page.inner_text("article")
            assert "$$" not in body and "\\epsilon" not in body
            # a citation links to its bibliography entry on the page
            cite = page.locator("a[href^='#id']").first
            target = cite.get_attribute("href")
            assert page.locator(f"div.citation{target}").count() == 1
            # an interactive plotly figure: opened, drawn by the local plotly.js, responding to hover
            page.locator("details.interactive-figure summary").first.click()
            frame = page.frame_locator("iframe.plotly-figure").first
            frame.locator(".main-svg").first.wait_for(timeout=30000)
            frame.locator(".nsewdrag").first.hover()
            frame.locator(".hoverlayer").first.wait_for(state="attached", timeout=10000)
            # the PDF link resolves
            href = page.locator("a.download").first.get_attribute("href")
            resp = page.request.get(f"{served}/{href}")
            assert resp.status == 200 and resp.body()[:4] == b"%PDF"
        finally:
            b.close()
    assert outside == [], outside[:5]  # nothing fetched from outside 127.0.0.1 (no CDN)


# -- the documentation in the same book: README front page, user guide, troubleshooting, CLI and API -------------

DOCTESTED = ("advmri.core.metrics", "advmri.core.kspace", "advmri.core.boxes")


def test_readme_is_a_front_page_without_typed_results():
    text = (ROOT / "README.md").read_text()
    prose = re.sub(r"```.*?```", " ", text, flags=re.S)
    assert len(prose.split()) <= 700, len(prose.split())
    assert hand_typed_numbers(text) == []
    for link in re.findall(r"\]\(([^)#]+)\)", text):  # every repository link resolves (book outputs are built)
        assert (ROOT / link).exists() or link.startswith(("paper/_build/", "http")), link


def test_every_public_name_has_a_docstring():
    import importlib
    import inspect
    import pkgutil

    import advmri

    missing = []
    for m in pkgutil.walk_packages(advmri.__path__, "advmri."):
        if m.name.endswith("__main__"):
            continue
        mod = importlib.import_module(m.name)
        assert (mod.__doc__ or "").strip(), f"{m.name}: no module docstring"
        for n in getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")]:
            obj = getattr(mod, n, None)
            if (
                (inspect.isfunction(obj) or inspect.isclass(obj))
                and obj.__module__ == m.name
                and not (obj.__doc__ or "").strip()
            ):
                missing.append(f"{m.name}.{n}")
    assert missing == [], missing


def test_doctests_of_the_main_entry_points():
    import doctest
    import importlib

    for name in DOCTESTED:
        res = doctest.testmod(importlib.import_module(name), raise_on_error=False)
        assert res.attempted > 0 and res.failed == 0, (name, res)


def test_troubleshooting_covers_every_error_kind(book):
    from advmri.report.book import error_kinds

    page = (book["html"].parent / "guide" / "troubleshooting.html").read_text()
    kinds = error_kinds()
    assert len(kinds) >= 10
    for c in kinds:
        assert (c.__doc__ or "").strip() and getattr(c, "fix", "").strip(), c
        assert c.__name__ in page, c.__name__


def test_cli_and_api_references_are_generated(book):
    from advmri.report.book import CLIS

    html = book["html"].parent
    cli = (html / "cli.html").read_text()
    for mod in CLIS:  # each command's own usage line (the console script's lists the commands)
        assert (
            (f"python -m {mod}" in cli)
            if mod != "advmri.app.cli"
            else ("usage: advmri &lt;command&gt;" in cli and "leaderboard" in cli)
        ), mod
    assert "--partition" in cli and "--verify" in cli  # from the parsers themselves
    attacks = (html / "api" / "advmri.attacks.html").read_text()  # one page per layer, a section per module
    assert "control_noise" in attacks and "random_in_ball" in attacks and 'id="api-advmri-attacks-noise"' in attacks
    index = (html / "api" / "index.html").read_text()
    assert 'href="advmri.attacks.html#api-advmri-attacks-noise"' in index  # the index links each module's section
    assert len(list((html / "api").glob("*.html"))) == 10  # the index, advmri and its 8 layers


def test_reader_finds_the_guide_the_api_and_search_offline(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = b.new_page()
            page.goto(f"{served}/guide/index.html")
            assert "User guide" in page.title() or page.locator("h1", has_text="User guide").count()
            page.locator("a", has_text="Troubleshooting").first.click()
            page.wait_for_load_state()
            assert page.locator("h2", has_text="CheckpointError").count() == 1
            page.goto(f"{served}/api/advmri.attacks.html")
            assert page.locator("dt[id='advmri.attacks.noise.control_noise']").count() == 1
            page.goto(f"{served}/search.html?q=eps")
            page.locator("#search-results li").first.wait_for(timeout=30000)
            assert page.locator("#search-results li").count() > 0
        finally:
            b.close()
