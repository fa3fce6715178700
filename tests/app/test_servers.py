"""A reader's path in a real browser: JupyterLab and the Voila app, driven by Playwright in Debian's chromium.

JupyterLab serves a copy of ``notebooks/`` (so the kernel starts in a ``notebooks/`` folder that is
not the project root, exactly as for a reader, and nothing the browser saves can touch the repo);
the notebooks run on the real embedded default (not smoke). Voila serves the repo's own
``06_explorer.ipynb``. Playwright never downloads a browser here: it launches
``$ADVMRI_CHROMIUM`` or ``chromium`` from PATH (``tasks.py test`` installs it with apt).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]
ERROR_RE = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception): ", re.M)


def _chromium() -> str:
    exe = os.environ.get("ADVMRI_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("no chromium: `apt-get install chromium` (tasks.py test does it) or set ADVMRI_CHROMIUM")
    return exe


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:  # the server answers (e.g. 404 for a probe path): it is up
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


class Server:
    def __init__(self, cmd: list[str], url: str, log: Path, cwd: Path, env: dict | None = None):
        self.log = log
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        try:
            _wait_http(url, self.proc, log)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def embedded_default():
    """The real embedded test split (the main job's data step; ~3 s when missing) and stored sweep results."""
    from advmri.app.pipeline import make_data
    from advmri.experiments import recons

    make_data(("test",))
    stores = recons.find(ROOT / "results" / "paper")
    assert stores, "results/paper holds no noise run with stored reconstructions (committed with the repo)"
    return stores


def _no_errors(page) -> None:
    texts = page.locator(".jp-OutputArea-output").all_inner_texts()
    bad = [t[:800] for t in texts if ERROR_RE.search(t)]
    assert not bad, "a cell shows an error:\n" + "\n---\n".join(bad)


def _slider_moves_figure(page, titles_sel: str) -> list[float]:
    """Press ArrowLeft on the stored-eps slider three times; each press must change the panel titles.
    Returns the seconds from key press to the new title in the DOM."""
    handle = page.locator(".widget-slider:has-text('stored eps') .noUi-handle").first
    handle.focus()
    dts = []
    for _ in range(3):
        before = page.locator(titles_sel).all_text_contents()
        t0 = time.perf_counter()
        page.keyboard.press("ArrowLeft")
        page.wait_for_function(
            "([sel, old]) => { const t = Array.from(document.querySelectorAll(sel)).map(e => e.textContent);"
            " return t.length > 0 && JSON.stringify(t) !== JSON.stringify(old); }",
            arg=[titles_sel, before],
            timeout=15000,
        )
        dts.append(time.perf_counter() - t0)
        after = page.locator(titles_sel).all_text_contents()
        assert any("adversarial, eps = " in t for t in after), after
    return dts


TITLES = ".js-plotly-plot .annotation-text"


def _wait_titles(page, sel: str = TITLES, text: str = "target (fully sampled)", timeout_s: float = 120) -> None:
    """The explorer's figure shows its first target, or the page shows an error (then fail with it)."""
    page.wait_for_function(
        f"([sel, text]) => {ERROR_JS}.test(document.body.innerText) ||"
        " Array.from(document.querySelectorAll(sel)).some(e => e.textContent === text)",
        arg=[sel, text],
        timeout=timeout_s * 1000,
    )
    body = page.locator("body").inner_text()
    assert not ERROR_RE.search(body), "the page shows an error:\n" + body[-3000:]


def _run_all(page) -> None:
    # the kernel must be connected first, or JupyterLab drops the request
    page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$")).first.wait_for(timeout=120000)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def _wait_done(page, timeout_s: float) -> None:
    """All code cells executed (a number in every prompt, none pending) and the kernel idle."""
    try:
        _wait_prompts(page, timeout_s)
    except Exception:
        shot = Path(os.environ.get("TMPDIR", "/tmp")) / "advmri-browser-failure.png"
        page.screenshot(path=str(shot))
        prompts = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt").all_text_contents()
        raise AssertionError(f"cells did not finish; prompts {prompts}; screenshot {shot}") from None
    _no_errors(page)


ERROR_JS = "/Traceback \\(most recent call last\\)|^\\w*(Error|Exception): /m"


def _wait_prompts(page, timeout_s: float) -> None:
    """Every prompt numbered, or an error shown (Run All stops at the first error)."""
    page.wait_for_function(
        "() => { const p = Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
        ".jp-CodeCell .jp-InputPrompt')).map(e => e.textContent.trim());"
        " const err = Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
        f".jp-OutputArea-output')).some(e => {ERROR_JS}.test(e.textContent));"
        " return err || (p.length > 0 && p.every(t => /^\\[\\d+\\]:$/.test(t))); }",
        timeout=timeout_s * 1000,
    )


def _open_by_double_click(page, name: str) -> None:
    page.locator(".jp-DirListing-itemText", has_text=re.compile(rf"^{re.escape(name)}$")).first.dblclick()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, embedded_default):
    from advmri.app.servers import free_port, lab_command

    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    port, token = free_port(), "advmri-test-token"
    # a fresh user: no saved workspace or user settings (the default viewer comes from the venv's labconfig)
    env = {"JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces"), "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings")}
    srv = Server(
        lab_command(port, root_dir=root, token=token),
        f"http://127.0.0.1:{port}/api/status?token={token}",
        root / "lab.log",
        cwd=root,
        env=env,
    )
    yield f"http://127.0.0.1:{port}", token, root
    srv.stop()


def test_jupyterlab_runs_notebooks_opened_by_double_click(lab, browser):
    url, token, root = lab
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(f"{url}/lab?token={token}")
    page.locator(".jp-DirListing-item").first.wait_for(timeout=60000)
    _open_by_double_click(page, "notebooks")
    page.locator(".jp-DirListing-itemText", has_text="01_data.py").first.wait_for()
    # 01: a .py opens as a notebook (jupytext default viewer), runs top to bottom on the embedded default
    _open_by_double_click(page, "01_data.py")
    page.locator(".jp-NotebookPanel .jp-CodeCell").first.wait_for(timeout=60000)
    assert page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").count() == 1, "01_data.py did not open as a notebook"
    assert page.locator(".jp-FileEditor:visible").count() == 0
    _run_all(page)
    _wait_done(page, 120)
    _no_errors(page)
    assert page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .js-plotly-plot").count() >= 4
    # 06: the explorer opens from stored reconstructions; the slider changes the figure
    _open_by_double_click(page, "06_explorer.py")
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").first.wait_for(timeout=60000)
    _run_all(page)
    _wait_done(page, 180)
    _no_errors(page)
    _wait_titles(page, f".jp-NotebookPanel:not(.lm-mod-hidden) {TITLES}")
    dts = _slider_moves_figure(page, f".jp-NotebookPanel:not(.lm-mod-hidden) {TITLES}")
    print(f"JupyterLab slider change -> new figure: {[round(d * 1000) for d in dts]} ms")
    _no_errors(page)
    # nothing was written into the notebooks folder but JupyterLab's own checkpoints
    written = {p.name for p in (root / "notebooks").iterdir()} - {p.name for p in (ROOT / "notebooks").iterdir()}
    assert written <= {".ipynb_checkpoints"}, written
    page.close()


def test_voila_app_serves_the_explorer(embedded_default, browser, tmp_path):
    from advmri.app.servers import free_port, voila_command

    port = free_port()
    srv = Server(
        voila_command(port), f"http://127.0.0.1:{port}/voila/static/probe", tmp_path / "voila.log", cwd=tmp_path
    )
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        t0 = time.perf_counter()
        page.goto(f"http://127.0.0.1:{port}/", timeout=120000)
        _wait_titles(page)
        first = time.perf_counter() - t0
        titles = page.locator(TITLES).all_text_contents()
        top = max(yaml.safe_load((ROOT / "sweeps/paper.yaml").read_text())["per_attack"]["noise"]["eps"])
        assert "target (fully sampled)" in titles and any(f"adversarial, eps = {top:g}" in t for t in titles), titles
        dts = _slider_moves_figure(page, TITLES)
        print(
            f"Voila: first figure {first:.1f} s after opening; slider change -> new figure "
            f"{[round(d * 1000) for d in dts]} ms"
        )
        # the live attack: any eps, progress shown, result in the panels
        page.locator("button", has_text="compute this one").click()
        page.locator("text=live attack done").wait_for(timeout=120000)
        assert any(t.startswith("live adversarial, eps = 0.01") for t in page.locator(TITLES).all_text_contents())
        assert not ERROR_RE.search(page.locator("body").inner_text())
        page.close()
    finally:
        srv.stop()
