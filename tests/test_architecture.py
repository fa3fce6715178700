"""The README's architecture section: it names every layer in import order, and every file it points at exists."""

from __future__ import annotations

import re

from test_layers import LAYERS  # the order the import-graph test enforces

from advmri.util.paths import ROOT


def section() -> str:
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


def test_the_layer_table_lists_every_package_in_import_order() -> None:
    rows = re.findall(r"^\| `(\w+)` \|", section(), flags=re.M)
    assert rows == LAYERS


def test_every_file_the_section_names_exists() -> None:
    assert missing_paths(section()) == []


def test_a_missing_file_is_caught() -> None:
    assert missing_paths("see `report/nonexistent.py` and `tests/core/test_metrics.py`") == ["report/nonexistent.py"]
