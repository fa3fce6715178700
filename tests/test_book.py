"""The article as a book (``advmri.book``): built from a copy of ``paper/`` with warnings as errors, every
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

from advmri.book import build_book, hand_typed_numbers
from advmri.errors import UserError
from conftest import ROOT

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
    assert "cdn." not in html and "cdn.plot.ly" not in (book["html"].parent / "_static" / "figures" /
                                                          "noise_box_ssim_8x.html").read_text()
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
