"""The paper build (advmri.report.paper): numbers from values-*.json, no placeholder-shaped values, the
--allow-dirty flag shown."""

import json
import re
import shutil

import pytest
from conftest import ROOT

from advmri.report.paper import build
from advmri.util.errors import UserError


@pytest.fixture()
def paper_copy(tmp_path):
    d = tmp_path / "paper"
    shutil.copytree(ROOT / "paper", d, ignore=shutil.ignore_patterns("build", "_build"))
    return d


def test_committed_paper_builds_without_placeholders(paper_copy):
    out = build(paper_copy)
    text = out["md"].read_text()
    assert "{{" not in text, re.findall(r"\{\{[^}]*\}\}", text)[:5]
    prose = re.sub(r"\|.*\|", "", text)  # tables may hold n/a cells; the prose must not
    for bad in (r"\bn/a\b", r"\bnan\b", r"\b0 boxes\b", r"\*\(table \w+ not generated\)\*"):
        assert not re.search(bad, prose), (bad, re.search(bad, prose))
    assert "primary claims" in text and "Limitations" in text


def test_a_missing_value_stops_the_build(paper_copy):
    src = paper_copy / "paper.md"
    src.write_text(src.read_text() + "\nA number: {{value:no_such_value}}.\n")
    with pytest.raises(UserError, match=r"paper.md: \{\{value:no_such_value\}\} is not computed"):
        build(paper_copy)


def test_results_from_a_dirty_tree_are_shown(paper_copy):
    prov = paper_copy / "tables" / "provenance.json"
    st = json.loads(prov.read_text())
    st["result_code_versions"] = st.get("result_code_versions", []) + ["0123456789ab+dirty"]
    prov.write_text(json.dumps(st))
    assert "--allow-dirty): 0123456789ab+dirty" in build(paper_copy)["md"].read_text()
