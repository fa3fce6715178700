"""advmri.report.card: a benchmark card's HTML opens offline in a browser; a card without intervals renders."""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading


def test_card_html_opens_offline_in_the_browser(cards):
    import shutil

    from playwright.sync_api import sync_playwright

    exe = os.environ.get("ADVMRI_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "no chromium: `apt-get install chromium` (tasks.py test does it) or set ADVMRI_CHROMIUM"

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(cards["image"]))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    outside: list[str] = []
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
            try:
                page = b.new_page()
                page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("data:", base)) else None)
                page.goto(f"{base}/card.html")
                page.wait_for_selector("#curves .main-svg", timeout=20_000)  # drawn by the local plotly.js
                assert page.locator("#curves .scatterlayer .trace").count() >= 4
                assert "Robustness card" in page.inner_text("h1")
                assert page.locator("img[alt^='worst01']").count() == 1
            finally:
                b.close()
    finally:
        srv.shutdown()
    assert not outside, outside


def test_a_card_without_intervals_renders(cards):
    """A single-volume (smoke) card stores no interval as JSON null; the headline and markdown still render
    (regression: notebook 08's smoke run raised ``float(None)``)."""
    from advmri.report.card import card_markdown, headline

    card = json.loads((cards["kspace"] / "card.json").read_text())
    for row in card["rows"]:
        for key in list(row):
            if key.endswith(("_lo", "_hi")):
                row[key] = None
    h = headline(card)
    assert h and all(h_["noise_clean_box_psnr_lo"] != h_["noise_clean_box_psnr_lo"] for h_ in h)  # NaN
    assert "## Headline" in card_markdown(card, [])
