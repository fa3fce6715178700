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
