"""The architecture guide (``paper/guide/architecture.md``) and the README's short section: both name every layer in
import order, and every file the guide points at exists."""

from __future__ import annotations

import re

from test_layers import LAYERS  # the order the import-graph test enforces

from advmri.util.paths import ROOT

GUIDE = ROOT / "paper" / "guide" / "architecture.md"


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Architecture")
    return text[start : text.index("\n## ", start + 1)]


def missing_paths(text: str) -> list[str]:
    """Backticked paths of the text (``a/b.py``, ``sweeps/*.yaml``) that match no file of the checkout, looked up
    from the root and from ``lib/advmri``."""
    missing = []
    for p in sorted(set(re.findall(r"`([\w./*-]+/[\w.*-]+\.(?:py|yaml|md|bib))`", text))):
        bases = [ROOT, ROOT / "lib" / "advmri"]
        if not any(list(b.glob(p)) for b in bases):
            missing.append(p)
    return missing


def test_the_guide_lists_every_layer_in_import_order() -> None:
    assert re.findall(r"^\| `(\w+)` \|", GUIDE.read_text(), flags=re.M) == LAYERS


def test_the_readme_names_the_layers_in_order_and_links_the_guide() -> None:
    text = readme_section()
    named = [m for m in re.findall(r"`(\w+)`", text) if m in LAYERS]
    assert named == LAYERS
    assert "(paper/guide/architecture.md)" in text


def test_every_file_the_guide_names_exists() -> None:
    assert missing_paths(GUIDE.read_text()) == []


def test_a_missing_file_is_caught() -> None:
    assert missing_paths("see `report/nonexistent.py` and `tests/core/test_metrics.py`") == ["report/nonexistent.py"]
