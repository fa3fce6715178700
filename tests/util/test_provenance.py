"""advmri.util.provenance: require_clean refuses a dirty tree unless allowed."""

import pytest

from advmri.util import provenance
from advmri.util.errors import UserError


def test_require_clean(monkeypatch):
    monkeypatch.setattr(provenance, "code_version", lambda: "0123456789ab+dirty")
    with pytest.raises(UserError, match="uncommitted changes.*--allow-dirty"):
        provenance.require_clean(False, "sweeps/x.yaml")
    assert provenance.require_clean(True, "sweeps/x.yaml") == "0123456789ab+dirty"
    monkeypatch.setattr(provenance, "code_version", lambda: "0123456789ab")
    assert provenance.require_clean(False, "sweeps/x.yaml") == "0123456789ab"


def test_lib_version_is_the_last_commit_that_changed_lib():
    """Derived outputs are stamped with it: committing them (a commit outside lib/) must not change it."""
    import subprocess

    from advmri.util import provenance

    v = provenance.lib_version()
    last = subprocess.run(
        ["git", "log", "-1", "--format=%H", "--", "lib"], cwd=provenance.ROOT, capture_output=True, text=True
    ).stdout.strip()
    if not last:  # not a git clone (an sdist): the package version
        assert v.startswith("advmri-")
        return
    assert v.split("+")[0] == last[:12] and v.endswith("+dirty") == provenance.code_version().endswith("+dirty")
