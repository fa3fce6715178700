"""ipywidgets explorers built by factories (unit-tested by setting ``.value``; browser-tested)."""

from __future__ import annotations

import time
from typing import Callable, Sequence

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from advmri.report.figures import image_grid
from advmri.experiments.recons import RunRecons, TargetRecons



class Explorer(W.VBox):
    """The explorer's box; ``shown`` says what the panels show: ``("stored" | "live", eps)``."""

    _state: dict

    @property
    def shown(self) -> tuple[str, float] | None:
        return self._state["shown"]


def _box_mse(img: np.ndarray, t: TargetRecons) -> float:
    b = t.local_box
    return float(np.mean((img[b.slices] - t.target[b.slices]) ** 2))


def _scales(t: TargetRecons) -> tuple[float, float]:
    """Fixed per-target intensity range of the images and of the difference panels (all settings)."""
    vmax = float(np.percentile(t.target, 99.5)) or 1.0
    diffs = np.abs(np.concatenate([t.adversarial, t.random]) - t.target[None])
    return vmax, float(np.percentile(diffs, 99.5)) or vmax


def eps_explorer(runs: Sequence[RunRecons], live: Callable[[RunRecons], object] | None = None,
                 live_max_eps: float = 0.03, height: int = 300) -> Explorer:
    """Explore stored noise-attack reconstructions: model, target and eps pickers, 2x3 panels.

    Top: fully sampled target, adversarial and paired random reconstruction (the control: the same
    per-coil noise energy on the sampled columns) at the chosen eps; bottom: the clean reconstruction (eps = 0; the lesion-free
    twin when eps = 0 was not run), ``|adversarial - target|`` and ``|random - target|``. Each target has
    one fixed intensity range for the images and one for the differences, the same for every eps
    and kind, so contrast never jumps. ``live(run)`` returns an object with
    ``compute(target, eps, on_step) -> (adv, rand, seconds)`` (default
    :class:`advmri.app.live.LiveAttack`): the "compute this one" button attacks the selected box at
    the live-eps slider's value. The box exposes its controls (``.model``, ``.target``, ``.eps``,
    ``.live_eps``, ``.compute``, ``.progress``, ``.status``), ``.figure`` and ``.shown`` (what
    the panels show: ``("stored", eps)`` or ``("live", eps)``).
    """
    runs = [r for r in runs if r.targets]
    if not runs:
        raise ValueError("eps_explorer: no stored reconstructions (run a noise sweep first)")
    if live is None:
        from advmri.app.live import LiveAttack

        live = LiveAttack
    live_cache: dict[int, object] = {}

    model = W.Dropdown(options=[(r.name, i) for i, r in enumerate(runs)], value=0, description="model",
                       layout=W.Layout(width="320px"))
    target = W.Dropdown(description="target", layout=W.Layout(width="520px"))
    eps = W.SelectionSlider(options=[0.0], description="stored eps", continuous_update=True,
                            layout=W.Layout(width="520px"), style={"description_width": "90px"})
    live_eps = W.FloatSlider(value=0.01, min=0.0, max=live_max_eps, step=0.0005, readout_format=".4f",
                             description="live eps", continuous_update=False, layout=W.Layout(width="520px"),
                             style={"description_width": "90px"})
    compute = W.Button(description="compute this one", button_style="warning", icon="bolt",
                       tooltip="run the PGA attack on the selected box at the live eps")
    progress = W.IntProgress(value=0, min=0, max=1, description="", layout=W.Layout(width="200px"))
    status = W.HTML()
    header = W.HTML()
    # drawn first as a plain figure, wrapped as a widget once it shows the first target: a front end
    # builds the widget from its initial state, and updates made before it renders would be lost
    fig = image_grid([np.zeros((2, 2))] * 6, [" "] * 6, cols=3, height=height)
    fig.update_layout(margin=dict(l=10, r=10, t=60, b=10), font=dict(size=11), plot_bgcolor="white")
    state = dict(shown=None, scales=(1.0, 1.0), quiet=False)

    def run_() -> RunRecons:
        return runs[model.value]

    def tgt() -> TargetRecons:
        return run_().targets[target.value]

    def reference(t: TargetRecons, r: RunRecons) -> tuple[np.ndarray, str]:
        if 0.0 in r.params:
            return t.adversarial[r.params.index(0.0)], "clean reconstruction (eps = 0)"
        if t.healthy is not None:
            return t.healthy, "lesion-free twin"
        return t.target, "target"

    def show(adv: np.ndarray, rnd: np.ndarray, e: float, source: str, note: str = "") -> None:
        t, r = tgt(), run_()
        vmax, dmax = state["scales"]
        ref, ref_title = reference(t, r)
        imgs = [t.target, adv, rnd, ref, np.abs(adv - t.target), np.abs(rnd - t.target)]
        what = "live " if source == "live" else ""
        titles = ["target (fully sampled)", f"{what}adversarial, eps = {e:.4g}",
                  f"{what}random, same coil norms, eps = {e:.4g}", ref_title,
                  f"|adversarial - target| (0..{dmax:.3g})", f"|random - target| (0..{dmax:.3g})"]
        ma, mr = _box_mse(adv, t), _box_mse(rnd, t)
        with fig.batch_update():
            for i, (tr, img) in enumerate(zip(fig.data, imgs)):
                tr.z = img
                tr.zmin, tr.zmax = 0.0, (dmax if i >= 4 else vmax)
            for ann, txt in zip(fig.layout.annotations, titles):
                ann.text = txt
        header.value = (f"<b>{t.name}</b> &nbsp; box x={t.box.x} y={t.box.y} w={t.box.w} h={t.box.h} "
                        f"(array coordinates) &nbsp;·&nbsp; {r.name} &nbsp;·&nbsp; box MSE adversarial "
                        f"{ma:.3g}, random {mr:.3g} ({ma / mr if mr > 0 else float('nan'):.1f}x){note}")
        state["shown"] = (source, float(e))

    def on_eps(*_):
        if state["quiet"]:
            return
        r, t = run_(), tgt()
        j = r.params.index(eps.value)
        show(t.adversarial[j], t.random[j], eps.value, "stored")

    def on_target(*_):
        if state["quiet"]:
            return
        t = tgt()
        state["scales"] = _scales(t)
        lb = t.local_box
        fig.layout.shapes = [dict(type="rect", x0=lb.x - 0.5, x1=lb.x + lb.w - 0.5, y0=lb.y - 0.5, y1=lb.y + lb.h - 0.5,
                                  xref=f"x{k + 1 if k else ''}", yref=f"y{k + 1 if k else ''}",
                                  line=dict(color="yellow", width=1.5)) for k in range(6)]
        on_eps()

    def on_model(*_):
        r = run_()
        state["quiet"] = True  # options change first; draw once at the end
        try:
            target.options = [(t.name, j) for j, t in enumerate(r.targets)]
            target.value = 0
            eps.options = [(f"{p:g}", p) for p in r.params]
            eps.value = r.params[-1]
        finally:
            state["quiet"] = False
        on_target()

    def on_compute(*_):
        i, t, e = model.value, tgt(), float(live_eps.value)
        compute.disabled = True
        status.value = f"attacking {t.name} at eps = {e:.4f} ..."
        progress.value, progress.max = 0, 1

        def step(done: int, total: int) -> None:
            progress.max, progress.value = total, done

        try:
            if i not in live_cache:
                status.value = "loading the model and data ..."
                live_cache[i] = live(runs[i])
            adv, rnd, sec = live_cache[i].compute(t, e, step)
            show(adv, rnd, e, "live", note=f" &nbsp;·&nbsp; computed live in {sec:.1f} s")
            status.value = f"live attack done in {sec:.1f} s (move the stored-eps slider to go back)"
        except Exception as ex:  # shown in the widget: an interactive app must not die on one failure
            status.value = f"<span style='color:#b00'>live attack failed: {ex.__class__.__name__}: {ex}</span>"
        finally:
            compute.disabled = False

    model.observe(on_model, names="value")
    target.observe(on_target, names="value")
    eps.observe(on_eps, names="value")
    compute.on_click(on_compute)
    on_model()
    fig = go.FigureWidget(fig)
    box = Explorer([W.HBox([model, target]), eps, header, fig, W.HBox([live_eps, compute, progress]), status])
    box.model, box.target, box.eps, box.live_eps, box.compute = model, target, eps, live_eps, compute
    box.progress, box.status, box.figure, box.header = progress, status, fig, header
    box.runs, box._state = runs, state
    return box


def timed_change(widget: W.ValueWidget, value) -> float:
    """Seconds the kernel-side update of one ``.value`` change takes (what a slider move costs)."""
    t0 = time.perf_counter()
    widget.value = value
    return time.perf_counter() - t0
