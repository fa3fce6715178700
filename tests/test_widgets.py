import numpy as np

from advmri.data.annotations import Box
from advmri.widgets import eps_explorer


def test_eps_explorer_updates_figure():
    tgt = np.ones((16, 16))
    box = Box(4, 4, 6, 6)
    cache = {("varnet", 0, e, k): tgt + e * (2 if k == "adversarial" else 1) for e in (0.0, 0.01) for k in ("adversarial", "random")}
    w = eps_explorer(cache, {0: (tgt, box, "Meniscus Tear")}, [0.0, 0.01])
    w.eps.value = 0.0
    assert np.allclose(np.asarray(w.figure.data[1].z), 1.0) and np.allclose(np.asarray(w.figure.data[2].z), 0.0)
    w.eps.value = 0.01
    assert np.allclose(np.asarray(w.figure.data[1].z), 1.02)
    assert "eps=0.01" in w.figure.layout.annotations[1].text
    w.kind.value = "random"
    assert np.allclose(np.asarray(w.figure.data[2].z), 0.01)
    assert w.figure.layout.shapes[0].x0 == 3.5
