"""ipywidgets explorers built by factories (unit-tested by setting ``.value``; browser-tested)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from advmri.experiments.recons import RunRecons, TargetRecons
from advmri.report.figures import image_grid


class _State(TypedDict):
    """What the explorer's panels show (``shown``), the target's image and difference ranges (``scales``) and
    whether callbacks are muted (``quiet``)."""

    shown: tuple[str, float] | None
    scales: tuple[float, float]
    quiet: bool


class _Live(Protocol):
    """A live attack (:class:`advmri.app.live.LiveAttack`): ``compute(target, eps, on_step)``."""

    def compute(
        self, t: TargetRecons, eps: float, on_step: Callable[[int, int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]: ...


class Explorer(W.VBox):
    """The explorer's box; ``shown`` says what the panels show: ``("stored" | "live", eps)``."""

    _state: _State

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


@dataclass
class _Controls:
    """The explorer's widgets: pickers, the live-attack row and the text fields."""

    model: W.Dropdown
    target: W.Dropdown
    eps: W.SelectionSlider
    live_eps: W.FloatSlider
    compute: W.Button
    progress: W.IntProgress
    status: W.HTML
    header: W.HTML


def _controls(runs: Sequence[RunRecons], live_max_eps: float) -> _Controls:
    """Build the (not yet wired) controls: model picker over ``runs``, empty target picker and eps slider
    (filled by the model callback), live-eps slider up to ``live_max_eps``, compute button, progress, text."""
    model = W.Dropdown(
        options=[(r.name, i) for i, r in enumerate(runs)], value=0, description="model", layout=W.Layout(width="320px")
    )
    target = W.Dropdown(description="target", layout=W.Layout(width="520px"))
    eps = W.SelectionSlider(
        options=[0.0],
        description="stored eps",
        continuous_update=True,
        layout=W.Layout(width="520px"),
        style={"description_width": "90px"},
    )
    live_eps = W.FloatSlider(
        value=0.01,
        min=0.0,
        max=live_max_eps,
        step=0.0005,
        readout_format=".4f",
        description="live eps",
        continuous_update=False,
        layout=W.Layout(width="520px"),
        style={"description_width": "90px"},
    )
    compute = W.Button(
        description="compute this one",
        button_style="warning",
        icon="bolt",
        tooltip="run the PGA attack on the selected box at the live eps",
    )
    progress = W.IntProgress(value=0, min=0, max=1, description="", layout=W.Layout(width="200px"))
    return _Controls(model, target, eps, live_eps, compute, progress, status=W.HTML(), header=W.HTML())


def _blank_panels(height: int) -> go.Figure:
    """The 2x3 panel grid with placeholder images and titles (a plain figure, see :func:`eps_explorer`)."""
    fig = image_grid([np.zeros((2, 2))] * 6, [" "] * 6, cols=3, height=height)
    fig.update_layout(margin=dict(l=10, r=10, t=60, b=10), font=dict(size=11), plot_bgcolor="white")
    return fig


def _reference(t: TargetRecons, r: RunRecons) -> tuple[np.ndarray, str]:
    """The bottom-left panel and its title: the clean reconstruction (eps = 0), else the lesion-free twin, else
    the target."""
    if 0.0 in r.params:
        return t.adversarial[r.params.index(0.0)], "clean reconstruction (eps = 0)"
    if t.healthy is not None:
        return t.healthy, "lesion-free twin"
    return t.target, "target"


def _box_outlines(t: TargetRecons) -> list[dict]:
    """Yellow outlines of the target's box (window coordinates, pixel edges) on each of the six panels."""
    lb = t.local_box
    return [
        dict(
            type="rect",
            x0=lb.x - 0.5,
            x1=lb.x + lb.w - 0.5,
            y0=lb.y - 0.5,
            y1=lb.y + lb.h - 0.5,
            xref=f"x{k + 1 if k else ''}",
            yref=f"y{k + 1 if k else ''}",
            line=dict(color="yellow", width=1.5),
        )
        for k in range(6)
    ]


class _EpsCallbacks:
    """The explorer's callbacks on its controls ``c`` and figure ``fig``; ``state`` holds ``shown`` (what the
    panels show), ``scales`` (the target's image and difference ranges) and ``quiet`` (no redraw)."""

    def __init__(self, runs: list[RunRecons], live: Callable[[RunRecons], _Live], c: _Controls, fig: go.Figure):
        self.runs, self.live, self.c, self.fig = runs, live, c, fig
        self.live_cache: dict[int, _Live] = {}
        self.state = _State(shown=None, scales=(1.0, 1.0), quiet=False)

    def run_(self) -> RunRecons:
        return self.runs[self.c.model.value]

    def tgt(self) -> TargetRecons:
        return self.run_().targets[self.c.target.value]

    def show(self, adv: np.ndarray, rnd: np.ndarray, e: float, source: str, note: str = "") -> None:
        """Draw ``adv`` and ``rnd`` (at eps ``e``, ``source`` "stored" or "live") for the selected target."""
        t, r = self.tgt(), self.run_()
        vmax, dmax = self.state["scales"]
        ref, ref_title = _reference(t, r)
        imgs = [t.target, adv, rnd, ref, np.abs(adv - t.target), np.abs(rnd - t.target)]
        what = "live " if source == "live" else ""
        titles = [
            "target (fully sampled)",
            f"{what}adversarial, eps = {e:.4g}",
            f"{what}random, same coil norms, eps = {e:.4g}",
            ref_title,
            f"|adversarial - target| (0..{dmax:.3g})",
            f"|random - target| (0..{dmax:.3g})",
        ]
        ma, mr = _box_mse(adv, t), _box_mse(rnd, t)
        with self.fig.batch_update():
            for i, (tr, img) in enumerate(zip(self.fig.data, imgs, strict=True)):
                tr.z = img
                tr.zmin, tr.zmax = 0.0, (dmax if i >= 4 else vmax)
            for ann, txt in zip(self.fig.layout.annotations, titles, strict=True):
                ann.text = txt
        self.c.header.value = (
            f"<b>{t.name}</b> &nbsp; box x={t.box.x} y={t.box.y} w={t.box.w} h={t.box.h} "
            f"(array coordinates) &nbsp;·&nbsp; {r.name} &nbsp;·&nbsp; box MSE adversarial "
            f"{ma:.3g}, random {mr:.3g} ({ma / mr if mr > 0 else float('nan'):.1f}x){note}"
        )
        self.state["shown"] = (source, float(e))

    def on_eps(self, *_) -> None:
        if self.state["quiet"]:
            return
        r, t = self.run_(), self.tgt()
        j = r.params.index(self.c.eps.value)
        self.show(t.adversarial[j], t.random[j], self.c.eps.value, "stored")

    def on_target(self, *_) -> None:
        if self.state["quiet"]:
            return
        t = self.tgt()
        self.state["scales"] = _scales(t)
        self.fig.layout.shapes = _box_outlines(t)
        self.on_eps()

    def on_model(self, *_) -> None:
        r = self.run_()
        self.state["quiet"] = True  # options change first; draw once at the end
        try:
            self.c.target.options = [(t.name, j) for j, t in enumerate(r.targets)]
            self.c.target.value = 0
            self.c.eps.options = [(f"{p:g}", p) for p in r.params]
            self.c.eps.value = r.params[-1]
        finally:
            self.state["quiet"] = False
        self.on_target()

    def on_compute(self, *_) -> None:
        c = self.c
        i, t, e = c.model.value, self.tgt(), float(c.live_eps.value)
        c.compute.disabled = True
        c.status.value = f"attacking {t.name} at eps = {e:.4f} ..."
        c.progress.value, c.progress.max = 0, 1

        def step(done: int, total: int) -> None:
            c.progress.max, c.progress.value = total, done

        try:
            if i not in self.live_cache:
                c.status.value = "loading the model and data ..."
                self.live_cache[i] = self.live(self.runs[i])
            adv, rnd, sec = self.live_cache[i].compute(t, e, step)
            self.show(adv, rnd, e, "live", note=f" &nbsp;·&nbsp; computed live in {sec:.1f} s")
            c.status.value = f"live attack done in {sec:.1f} s (move the stored-eps slider to go back)"
        except Exception as ex:  # shown in the widget: an interactive app must not die on one failure
            c.status.value = f"<span style='color:#b00'>live attack failed: {ex.__class__.__name__}: {ex}</span>"
        finally:
            c.compute.disabled = False


def eps_explorer(
    runs: Sequence[RunRecons],
    live: Callable[[RunRecons], _Live] | None = None,
    live_max_eps: float = 0.03,
    height: int = 300,
) -> Explorer:
    """Explore stored noise-attack reconstructions: model, target and eps pickers, 2x3 panels.

    Top: fully sampled target, adversarial and paired random reconstruction (the control: the same
    per-coil noise energy on the sampled columns) at the chosen eps; bottom: the clean reconstruction (eps = 0; the
    lesion-free twin when eps = 0 was not run), ``|adversarial - target|`` and ``|random - target|``. Each target has
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
    c = _controls(runs, live_max_eps)
    # drawn first as a plain figure, wrapped as a widget once it shows the first target: a front end
    # builds the widget from its initial state, and updates made before it renders would be lost
    cb = _EpsCallbacks(runs, live, c, _blank_panels(height))
    c.model.observe(cb.on_model, names="value")
    c.target.observe(cb.on_target, names="value")
    c.eps.observe(cb.on_eps, names="value")
    c.compute.on_click(cb.on_compute)
    cb.on_model()
    fig = cb.fig = go.FigureWidget(cb.fig)  # the callbacks draw on the widget from now on
    box = Explorer(
        [W.HBox([c.model, c.target]), c.eps, c.header, fig, W.HBox([c.live_eps, c.compute, c.progress]), c.status]
    )
    box.model, box.target, box.eps, box.live_eps, box.compute = c.model, c.target, c.eps, c.live_eps, c.compute
    box.progress, box.status, box.figure, box.header = c.progress, c.status, fig, c.header
    box.runs, box._state = runs, cb.state
    return box


def timed_change(widget: W.ValueWidget, value) -> float:
    """Seconds the kernel-side update of one ``.value`` change takes (what a slider move costs)."""
    t0 = time.perf_counter()
    widget.value = value
    return time.perf_counter() - t0
