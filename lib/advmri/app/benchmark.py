"""``advmri benchmark``: one model, the paper's threat models, one robustness card.

For each acceleration and threat the benchmark builds a run from :mod:`advmri.experiments.threats` and executes it
(:func:`advmri.experiments.run.execute`, the same code as the paper's runs): targeted adversarial k-space noise with its
energy-matched random control, and adversarial rotation with random angles of the same bound. Where the
data has lesion-free twins, a second noise run attacks the twins toward the lesion (``target: lesion``) for
the hallucination rate. The rows of the card (:func:`card_rows`) are box means over the attacked boxes with
95% percentile intervals from resampling **volumes** (:func:`advmri.report.stats.cluster_bootstrap`); random rows
average each box's draws first. Rendering (Markdown, HTML, examples) is :mod:`advmri.report.card`.

Profiles: ``standard`` (the defaults below) and ``--smoke`` (:data:`SMOKE`: 2 boxes, 2 PGA steps, a 1-degree grid;
under a minute on the embedded data). Every run is seeded: the same parameters give the same rows.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from advmri import __version__
from advmri.experiments.threats import KspaceNoise, Rotation
from advmri.models.usermodel import KINDS, is_user_spec, parameter_count
from advmri.report.stats import cluster_bootstrap, seed_of
from advmri.util.errors import ParameterError, UserError, cli, prog
from advmri.util.provenance import code_version
from advmri.util.schema import add_arguments, given, option, validate

__all__ = [
    "BenchmarkConfig",
    "SMOKE",
    "CARD_VERSION",
    "threats_of",
    "benchmark",
    "card_rows",
    "describe_model",
    "add_cli",
    "config_from_args",
]

CARD_VERSION = 2  # 2: the checks for gradient masking (audit)
ROW_METRICS = {"box_psnr": "box_psnr", "box_ssim": "box_ssim", "image_ssim": "img_ssim", "image_psnr": "img_psnr"}


@dataclass(frozen=True)
class BenchmarkConfig:
    """Every parameter of ``advmri benchmark`` (the CLI options are generated from these fields)."""

    model: str = option(
        "",
        "model: file.py:factory[:kspace|image], a checkpoint .pt, official:varnet|unet:PATH "
        "or classical:cg-sense|l1-wavelet",
    )
    data: str = option(
        "data/synthetic/small/test", "folder of fastMRI multi-coil .h5 files (with knee.csv or --annotations)"
    )
    out: str = option("", "folder for card.json, card.md, card.html (and runs/, examples/)")
    annotations: str | None = option(None, "fastMRI+ annotation CSV (default: knee.csv beside the data)")
    model_kind: str | None = option(
        None, "kspace or image (a file.py:factory model; detected when not given)", choices=KINDS
    )
    acceleration: tuple[int, ...] = option(
        (4, 8), "accelerations (random masks, fastMRI's centre fractions)", choices=(4, 8), many=True
    )
    threats: tuple[str, ...] = option(("noise", "rotation"), "threat models", choices=("noise", "rotation"), many=True)
    smoke: bool = option(
        False,
        "a profile of seconds: 2 boxes, eps 0 and 0.01, 2 PGA steps, rotation grid +-2 deg "
        "in 1 deg steps, 1 random draw (options given explicitly still apply)",
    )
    save_examples: int = option(0, "save the N boxes with the lowest adversarial box PSNR as images", lo=0)
    max_targets: int = option(8, "boxes attacked, evenly spaced over the data's boxes (0: all)", lo=0)
    eps: tuple[float, ...] = option(
        (0.0, 0.005, 0.01, 0.02), "noise budgets (relative per coil; 0 = clean)", lo=0.0, many=True
    )
    steps: int = option(10, "PGA steps", lo=1)
    step_size: float = option(0.5, "PGA step as a fraction of the budget", lo=0.0)
    bounds: tuple[float, ...] = option((0.0, 1.0, 2.0, 3.0, 4.0, 5.0), "rotation bounds (degrees)", lo=0.0, many=True)
    max_angle: float = option(4.5, "rotation grid -max..max (degrees)", lo=0.0)
    angle_step: float = option(0.5, "rotation grid step (degrees; the paper's 0.1 is 5x slower)", lo=0.0)
    random_draws: int = option(2, "random-control draws per box and budget", lo=1)
    hallucination: bool = option(True, "also attack the lesion-free twins toward the lesion (when the data has them)")
    budget: float = option(0.01, "the noise budget of the headline numbers and the leaderboard", lo=0.0)
    seed: int = option(0, "seed of the random controls", lo=0)
    device: str = option("cpu", "torch device")
    chunk: int | None = option(None, "items per forward pass (default: advmri.util.perf.default_chunk)", lo=1)
    threads: int = option(
        0,
        "CPU threads per run (0: every core of this machine); float32 results depend on it in "
        "the last bits, so a card records it",
        lo=0,
    )
    force: bool = option(False, "replace an existing card in --out")

    @property
    def profile(self) -> str:
        return "smoke" if self.smoke else "standard"


SMOKE: dict[str, Any] = dict(
    max_targets=2, eps=(0.0, 0.01), steps=2, bounds=(0.0, 1.0, 2.0), max_angle=2.0, angle_step=1.0, random_draws=1
)


def effective(cfg: BenchmarkConfig, set_by_user: Collection[str] = frozenset()) -> BenchmarkConfig:
    """``cfg`` with the smoke profile applied to every field the user did not set."""
    if not cfg.smoke:
        return cfg
    return replace(cfg, **{k: v for k, v in SMOKE.items() if k not in set_by_user})


def threats_of(cfg: BenchmarkConfig) -> dict[str, Any]:
    """The threat objects of a benchmark: ``noise``, ``rotation`` and (maybe) ``hallucination``."""
    noise = KspaceNoise(
        eps=cfg.eps, steps=cfg.steps, step_size=cfg.step_size, random_draws=cfg.random_draws, seed=cfg.seed
    )
    out: dict[str, Any] = {}
    if "noise" in cfg.threats:
        out["noise"] = noise
        if cfg.hallucination:
            out["hallucination"] = replace(noise, target="lesion")
    if "rotation" in cfg.threats:
        out["rotation"] = Rotation(
            bounds=cfg.bounds,
            max_angle=cfg.max_angle,
            angle_step=cfg.angle_step,
            random_draws=cfg.random_draws,
            seed=cfg.seed,
        )
    return out


def resolved_threads(cfg: BenchmarkConfig) -> int:
    """``threads``, or the cores this process may use when it is 0."""
    import os

    if cfg.threads:
        return cfg.threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_config(cfg: BenchmarkConfig) -> None:
    """One-line errors naming the parameter, before any work."""
    validate(cfg)
    if not cfg.model:
        raise ParameterError(
            "model: required (file.py:factory, a checkpoint, official:<kind>:PATH or classical:<method>)"
        )
    if not cfg.out:
        raise ParameterError("out: required (a folder for the card)")
    if cfg.model_kind and not is_user_spec(cfg.model):
        raise ParameterError(f"model-kind: only for a file.py:factory model, not {cfg.model!r}")
    if cfg.budget not in cfg.eps:
        raise ParameterError(f"budget: {cfg.budget:g} is not one of the noise budgets eps {list(cfg.eps)}")
    if 0.0 not in cfg.eps:
        raise ParameterError(f"eps: must include 0 (the clean reconstruction), got {list(cfg.eps)}")


def model_spec(cfg: BenchmarkConfig) -> str:
    """The spec the runs use: ``file.py:factory:kind`` when ``--model-kind`` is given."""
    if cfg.model_kind and is_user_spec(cfg.model) and cfg.model.rsplit(":", 1)[-1] not in KINDS:
        return f"{cfg.model}:{cfg.model_kind}"
    return cfg.model


def describe_model(spec: str) -> dict[str, Any]:
    """``spec``, ``kind``, ``files`` (path -> sha256 of the file itself) and ``parameters`` of a model spec."""
    from advmri.experiments.run import load_model
    from advmri.models.networks import file_sha256
    from advmri.util.paths import display_path, project_path

    model = load_model(spec)
    files: dict[str, str] = {}
    if is_user_spec(spec):
        kind, path = f"user ({model.model_kind})", spec.partition(".py:")[0] + ".py"
    elif spec.startswith("classical:"):
        kind, path = "classical", None
    elif spec.startswith("official:"):
        parts = spec.split(":", 2)
        kind, path = f"official {parts[1]}", parts[2] if len(parts) > 2 else None
    else:
        kind, path = f"advmri {model.kind} ({model.config})", spec
    if path:
        files[display_path(project_path(path))] = file_sha256(project_path(path))
    return dict(spec=spec, kind=kind, name=model_name(spec), files=files, parameters=parameter_count(model))


def model_name(spec: str) -> str:
    """A short display name: the checkpoint's stem, ``official-<kind>``, the classical method, ``<file>:<factory>``."""
    if is_user_spec(spec):
        head, _, tail = spec.partition(".py:")
        return f"{Path(head).name}:{tail.split(':')[0]}"
    if spec.startswith("classical:"):
        return spec.split(":", 1)[1]
    if spec.startswith("official:"):
        return "official-" + spec.split(":")[1]
    return Path(spec).stem


def _cell(d: pd.DataFrame, key: tuple) -> dict[str, Any]:
    """Means and volume-bootstrap 95% intervals of one card row's boxes (one value per box)."""
    row: dict[str, Any] = dict(n_boxes=int(len(d)), n_volumes=int(d["file"].nunique()))
    for name, col in ROW_METRICS.items():
        m, lo, hi = cluster_bootstrap(d[col], d["file"], 0.95, n_boot=2000, seed=seed_of(*key, name))
        row.update({name: m, f"{name}_lo": lo, f"{name}_hi": hi})
    if d["healthy_closer"].notna().any():
        row["erasure_rate"] = float(d["healthy_closer"].mean())
        row["lesion_retained"] = float(d["lesion_retained"].mean())
    return row


def _per_box(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (box, param, kind): random draws averaged."""
    key = ["file", "slice", "bx", "by", "bw", "bh", "param", "kind"]
    return df.groupby(key, as_index=False, dropna=False)[
        list(set(ROW_METRICS.values()) | {"healthy_closer", "lesion_retained"})
    ].mean()


def card_rows(df: pd.DataFrame, threat: str, acceleration: int) -> list[dict[str, Any]]:
    """The card rows of one run's table: ``clean`` (noise: eps 0; rotation: the un-rotated reconstruction),
    then ``adversarial`` and ``random`` for every budget / bound above 0."""
    d = _per_box(df)
    if threat == "noise":
        d.loc[(d.param == 0) & (d.kind == "adversarial"), "kind"] = "clean"
        d = d[(d.param > 0) | (d.kind == "clean")]
    else:
        d = d[(d.kind == "clean") | (d.param > 0)]
    rows = []
    for (param, kind), g in d.groupby(["param", "kind"], sort=True):
        rows.append(
            dict(
                threat=threat,
                acceleration=int(acceleration),
                param=float(param),
                kind=str(kind),
                **_cell(g, (threat, acceleration, param, kind)),
            )
        )
    order = {"clean": 0, "adversarial": 1, "random": 2}
    return sorted(rows, key=lambda r: (r["param"] > 0, r["param"], order[r["kind"]]))


def _hallucination(rows: list[dict], df: pd.DataFrame, acceleration: int) -> None:
    """Add ``hallucination_rate`` (box closer to the twin with the lesion than to the lesion-free truth) to the
    noise rows of the same acceleration, budget and kind."""
    d = _per_box(df)
    d.loc[(d.param == 0) & (d.kind == "adversarial"), "kind"] = "clean"
    rates = d.groupby(["param", "kind"])["healthy_closer"].mean()
    for r in rows:
        if r["threat"] == "noise" and r["acceleration"] == acceleration and (r["param"], r["kind"]) in rates.index:
            r["hallucination_rate"] = float(rates[(r["param"], r["kind"])])
            r["n_twins"] = int(len(d[(d.param == r["param"]) & (d.kind == r["kind"])]))


def ensure_embedded(cfg: BenchmarkConfig, log: Callable[[str], object]) -> None:
    """Generate the embedded test set (synthetic, seeded) when ``--data`` is its default folder and it does not
    exist yet; any other missing folder is the run's one-line error."""
    from advmri.app.pipeline import DATA, make_data
    from advmri.util.paths import project_path

    if project_path(cfg.data) == DATA / "test" and not (DATA / "test").exists():
        log(f"benchmark: generating the embedded test set in {DATA / 'test'} (synthetic, seeded; once)")
        make_data(("test",))


def probe(run) -> None:
    """One reconstruction of the first box before any attack: a model returning the wrong shape, dtype or NaN
    stops here with its one-line error (:class:`advmri.models.usermodel.ModelError`)."""
    import torch

    from advmri.attacks.common import make_batch
    from advmri.attacks.noise import recon_with_noise
    from advmri.experiments.run import load_model, run_dataset

    tb = make_batch([run_dataset(run)[0]]).to(run.device)
    with torch.no_grad():
        recon_with_noise(load_model(run.model, run.device), tb, torch.zeros_like(tb.kspace))


def has_twins(run) -> bool:
    """Whether the run's data has the lesion-free twins a ``target: lesion`` run needs."""
    from advmri.experiments.run import run_dataset

    try:
        run_dataset(run)
    except ParameterError:
        return False
    return True


_LOG = functools.partial(print, flush=True)  # the default progress log: stdout, unbuffered


def _step(run: Any, what: str, keep_images: bool, log: Callable[[str], object]) -> tuple[pd.DataFrame, dict]:
    """Execute one run of the card, saying that it started (a terminal also gets the run's progress bar on
    stderr), so no step is silent for minutes."""
    from advmri.experiments.run import execute

    bar = sys.stderr.isatty()
    log(f"{what}: started" + ("" if bar else " (one line when done)"))
    return execute(run, progress=bar, keep_images=keep_images, keep_noise=run.attack == "noise")


def benchmark(
    cfg: BenchmarkConfig, log: Callable[[str], object] = _LOG, keep_images: bool = False
) -> tuple[dict, dict]:
    """Run every (acceleration, threat) of ``cfg``; returns ``(card, extras)`` with ``extras['tables']`` the run
    tables by name and (``keep_images``) ``extras['examples']`` the images of the worst boxes."""

    check_config(cfg)
    t0 = time.perf_counter()
    ensure_embedded(cfg, log)
    spec = model_spec(cfg)
    model = describe_model(spec)
    rows: list[dict] = []
    tables: dict[str, pd.DataFrame] = {}
    runs: dict[str, dict] = {}
    kept: dict[str, tuple] = {}
    ledger: dict[str, tuple] = {}  # noise runs with their perturbations: the card's ledger (replay)
    common = dict(annotations=cfg.annotations, max_targets=cfg.max_targets, device=cfg.device, chunk=cfg.chunk)
    common["threads"] = resolved_threads(cfg)
    plan = [(acc, name, threat) for acc in cfg.acceleration for name, threat in threats_of(cfg).items()]
    for n, (acc, name, threat) in enumerate(plan, 1):
        run = threat.run(spec, cfg.data, acc, **common)
        threat_is_noise = run.attack == "noise"
        if n == 1:
            run.check_inputs()
            probe(run)
        if name == "hallucination" and not has_twins(run):
            log(f"benchmark [{n}/{len(plan)}] hallucination {acc}x: skipped (the data has no lesion-free twins)")
            continue
        t = time.perf_counter()
        df, ex = _step(run, f"benchmark [{n}/{len(plan)}] {name} {acc}x", keep_images and name == "noise", log)
        label = f"{name}-{acc}x"
        _log_step(log, n, len(plan), name, acc, df, t)
        tables[label], runs[label] = df, dict(run_id=run.id, rows=len(df), seconds=round(ex["seconds"], 1))
        if threat_is_noise:
            ledger[label] = (run, ex, df)
        if name == "hallucination":
            _hallucination(rows, df, acc)  # rates onto the noise rows
        else:
            rows += card_rows(df, name, acc)
        if keep_images and name == "noise":
            kept[label] = (df, ex)
    checked = _audit(cfg, spec, tables, log)
    card = dict(
        card_version=CARD_VERSION,
        model=model,
        data=_data_info(cfg, tables),
        advmri_version=f"{__version__} ({code_version()})",
        profile=cfg.profile,
        settings=_settings(cfg),
        budget=cfg.budget,
        seconds=round(time.perf_counter() - t0, 1),
        runs=runs,
        rows=rows,
        audit=checked,
    )
    return _finite(card), dict(tables=tables, images=kept, ledger=ledger)  # strict JSON for every caller


def _log_step(log: Callable[[str], object], n: int, of: int, name: str, acc: int, df: pd.DataFrame, t: float) -> None:
    boxes = df[["file", "slice", "bx"]].drop_duplicates().shape[0]
    log(f"benchmark [{n}/{of}] {name} {acc}x: {boxes} boxes, {time.perf_counter() - t:.1f} s")


def _audit(
    cfg: BenchmarkConfig, spec: str, tables: dict[str, pd.DataFrame], log: Callable[[str], object]
) -> dict[str, Any]:
    """The card's checks (:func:`advmri.experiments.audit.audit`) at the first acceleration and the card's budget,
    with the table checks of every noise table (named with its acceleration)."""
    t = time.perf_counter()
    from advmri.attacks.noise import NoiseConfig
    from advmri.experiments.audit import AUDIT_BOXES, audit, table_checks

    acc = cfg.acceleration[0]
    ncfg = NoiseConfig(eps=(cfg.budget,), steps=cfg.steps, step_size=cfg.step_size, seed=cfg.seed)
    boxes = min(AUDIT_BOXES, cfg.max_targets) if cfg.max_targets > 0 else AUDIT_BOXES
    result = audit(spec, cfg.data, acc, cfg.budget, ncfg, None, boxes, annotations=cfg.annotations)
    for label, df in tables.items():
        if label.startswith("noise-"):
            for c in table_checks(df):
                c.name = f"{c.name} ({label.split('-')[1]})"
                result.checks.append(c)
    log(
        f"benchmark checks: {len(result.checks)} checks, failed: {', '.join(result.failed) or 'none'}, "
        f"{time.perf_counter() - t:.1f} s"
    )
    return result.as_dict()


def _data_info(cfg: BenchmarkConfig, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    from advmri.util.paths import display_path, project_path

    first = next(iter(tables.values()), pd.DataFrame(columns=["file", "slice", "bx"]))
    return dict(
        dir=display_path(project_path(cfg.data)),
        annotations=cfg.annotations,
        boxes=int(first[["file", "slice", "bx", "by", "bw", "bh"]].drop_duplicates().shape[0]) if len(first) else 0,
        volumes=int(first["file"].nunique()) if len(first) else 0,
    )


def _settings(cfg: BenchmarkConfig) -> dict[str, Any]:
    d = asdict(cfg)
    for k in ("out", "force", "model", "data", "save_examples", "device", "chunk"):
        d.pop(k)
    d["threads"] = resolved_threads(cfg)
    d["threat_models"] = {k: t.describe() for k, t in threats_of(cfg).items()}
    return json.loads(json.dumps(d, default=list))


def add_cli(parser: argparse.ArgumentParser) -> None:
    """The options of every :class:`BenchmarkConfig` field (generated from the schema)."""
    add_arguments(parser, BenchmarkConfig)


def config_from_args(ns: argparse.Namespace) -> BenchmarkConfig:
    """The command line over the defaults (and ``--smoke`` over the defaults the user did not set)."""
    g: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in given(ns, BenchmarkConfig).items()}
    cfg = replace(BenchmarkConfig(), **g)
    return effective(cfg, set(g))


def require_out(cfg: BenchmarkConfig) -> Path:
    """The output folder; an existing card there is kept unless ``--force``."""
    from advmri.util.paths import project_path

    out = project_path(cfg.out)
    if (out / "card.json").exists() and not cfg.force:
        raise UserError(f"{out / 'card.json'}: exists; use --force to replace the card (or another --out)")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder (out)")
    return out


def _finite(x: Any) -> Any:
    """NaN/inf -> None, so that ``card.json`` is strict JSON."""
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def parser(name: str = "advmri benchmark") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=name,
        description="Benchmark a reconstruction model under the paper's threat "
        "models and write a robustness card (card.json, card.md, card.html).",
    )
    add_cli(ap)
    return ap


@cli
def main(argv: list[str] | None = None) -> int:
    """``advmri benchmark --model SPEC --data DIR --out DIR [...]``."""
    from advmri.experiments.ledger import write_ledger
    from advmri.report.card import headline, write_card
    from advmri.util.locks import exclusive

    cfg = config_from_args(parser(prog("advmri.app.benchmark")).parse_args(argv))
    check_config(cfg)
    out = require_out(cfg)
    with exclusive(out / "card.json", "benchmark (advmri benchmark)"):
        card, extras = benchmark(cfg, keep_images=cfg.save_examples > 0)
        # the perturbations at the headline budget, before card.json (a card.json means complete)
        card["ledger"] = write_ledger(out, extras["ledger"], {cfg.budget})
        files = write_card(out, card, extras, cfg.save_examples)
    for h in headline(card):
        print(
            f"{h['acceleration']}x: clean box PSNR {h.get('noise_clean_box_psnr', float('nan')):.2f} dB, "
            f"adversarial (eps {cfg.budget:g}) {h.get('noise_adversarial_box_psnr', float('nan')):.2f} dB, "
            f"random {h.get('noise_random_box_psnr', float('nan')):.2f} dB"
            + (
                f", worst rotation (<= {h['rotation_bound']:g} deg) {h['rotation_adversarial_box_psnr']:.2f} dB"
                if "rotation_bound" in h
                else ""
            )
        )
    print(f"card ({card['seconds']:.0f} s) -> {files['json']}, {files['md'].name}, {files['html'].name}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(None))
