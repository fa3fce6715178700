"""ipywidgets explorers built by factories (unit-tested by setting ``.value``)."""

from __future__ import annotations

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from advmri.figures import image_grid, zoom


def eps_explorer(cache: dict, targets: dict, eps_values, models=None) -> W.VBox:
    """Slider over eps + pickers for model and target; shows recon, |recon - target|, box zoom.

    ``cache[(model, target_id, eps, kind)]`` -> recon ``(H, W)`` (precomputed, so the widget
    responds at once); ``targets[target_id] = (target image, Box, label)``.
    The returned box exposes ``.eps``, ``.model``, ``.target``, ``.kind`` and ``.figure``.
    """
    models = models or sorted({k[0] for k in cache})
    eps_values = sorted(eps_values)
    eps = W.SelectionSlider(options=eps_values, value=eps_values[-1], description="eps")
    model = W.Dropdown(options=models, value=models[0], description="model")
    target = W.Dropdown(options=list(targets), value=list(targets)[0], description="target")
    kind = W.ToggleButtons(options=["adversarial", "random"], value="adversarial")
    fig = go.FigureWidget(image_grid([np.zeros((2, 2))] * 4, ["target", "recon", "difference", "zoom"]))

    def update(*_):
        tgt, box, label = targets[target.value]
        rec = np.asarray(cache[(model.value, target.value, eps.value, kind.value)])
        diff = np.abs(rec - np.asarray(tgt))
        new = image_grid([tgt, rec, diff, zoom(rec, box)],
                         ["target", f"{model.value} {kind.value} eps={eps.value}", "|recon - target|",
                          f"box zoom ({label})"], boxes=[box, box, box, None])
        with fig.batch_update():
            for tr, nt in zip(fig.data, new.data):
                tr.z = nt.z
                tr.zmax = nt.zmax
            fig.layout.shapes = new.layout.shapes
            for ann, na in zip(fig.layout.annotations, new.layout.annotations):
                ann.text = na.text

    for w in (eps, model, target, kind):
        w.observe(update, names="value")
    update()
    box = W.VBox([W.HBox([model, target, kind]), eps, fig])
    box.eps, box.model, box.target, box.kind, box.figure = eps, model, target, kind, fig
    return box
