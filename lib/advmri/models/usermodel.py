"""Any reconstruction model as an advmri model: ``--model path/to/my_model.py:make``.

The file is imported by path and its zero-argument factory called (under ``torch.manual_seed(0)``, so a
randomly initialised model is the same every time). The factory returns a ``torch.nn.Module`` with one of
two signatures, given with ``:kspace`` / ``:image`` at the end of the spec or detected from ``forward``:

* **kspace** (fastMRI's VarNet convention): ``forward(masked_kspace, mask) -> image`` with
  ``masked_kspace`` ``(batch, coils, rows, cols, 2)`` float32 (real/imaginary last, centred orthonormal FFT,
  rows carry the 2x readout oversampling), ``mask`` ``(batch, 1, 1, cols, 1)`` bool, and the output
  ``(batch, h, w)`` magnitude (``(batch, 1, h, w)`` is accepted), centre-cropped by advmri to the target's
  ``(H, W)`` when larger.
* **image** (fastMRI's U-Net convention): ``forward(x) -> x'`` on the zero-filled RSS image
  ``(batch, 1, H, W)``. The adapter does fastMRI's ``UnetDataTransform`` normalisation around it: the input is
  ``(image - mean) / std`` clamped to +-6 (mean and std of each image), the output is multiplied by ``std``
  and ``mean`` is added back, exactly as for advmri's own U-Net (:class:`advmri.models.networks.UnetRecon`).

Every call is checked: a wrong output shape or dtype, or a non-finite value, stops with one line naming the
file, the factory and the expected vs got shape (:class:`ModelError`).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from advmri.core import kspace as K
from advmri.models.networks import Reconstructor, _mask5, file_sha256, unet_input, zero_filled
from advmri.util.errors import UserError
from advmri.util.paths import project_path

__all__ = [
    "KINDS",
    "ModelError",
    "refuse_bare_file",
    "UserModelSpec",
    "is_user_spec",
    "parse_user_spec",
    "load_user_model",
    "detect_kind",
    "parameter_count",
]

KINDS = ("kspace", "image")


class ModelError(UserError):
    """A user model (``file.py:factory``) could not be loaded, or returned the wrong thing."""

    fix = (
        "Check the named file and factory: the factory takes no arguments and returns a torch.nn.Module whose "
        "forward is forward(masked_kspace, mask) (kspace) or forward(x) (image), returning the shape the message "
        "expects; give the kind with --model-kind (or :kspace / :image at the end of the spec) if it is not detected."
    )


class UserModelSpec:
    """``path.py:factory[:kind]`` parsed: ``path`` (resolved), ``factory`` name, ``kind`` or None (detect)."""

    def __init__(self, path: Path, factory: str, kind: str | None):
        self.path, self.factory, self.kind = path, factory, kind

    @property
    def where(self) -> str:
        return f"{self.path}:{self.factory}"


def is_user_spec(spec: str) -> bool:
    """True for ``something.py:factory`` (optionally ``:kspace`` / ``:image``)."""
    return isinstance(spec, str) and ".py:" in spec and not spec.startswith(("official:", "classical:"))


def parse_user_spec(spec: str) -> UserModelSpec:
    """Split ``path.py:factory[:kind]``; one-line errors for a missing file, an empty factory or a bad kind."""
    head, _, tail = spec.partition(".py:")
    path = project_path(head + ".py")
    factory, _, kind = tail.partition(":")
    if not factory.isidentifier():
        raise ModelError(f"model: {spec!r}: the factory after '.py:' must be a Python name (path/to/file.py:make)")
    if kind and kind not in KINDS:
        raise ModelError(f"model: {spec!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
    if not path.is_file():
        raise ModelError(f"{path}: model file not found (model {spec!r})")
    return UserModelSpec(path, factory, kind or None)


def _import(spec: UserModelSpec):
    name = f"advmri_user_model_{file_sha256(spec.path)[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    loader_spec = importlib.util.spec_from_file_location(name, spec.path)
    module = importlib.util.module_from_spec(loader_spec)  # type: ignore[arg-type]
    folder = str(spec.path.parent)
    sys.path.insert(0, folder)  # the file may import its siblings (from mynet import Net), as `python file.py` would
    try:
        loader_spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as e:  # noqa: BLE001 - the user's file: one line naming it
        raise ModelError(f"{spec.path}: importing the model file failed ({e.__class__.__name__}: {e})") from e
    finally:
        sys.path.remove(folder)
    sys.modules[name] = module
    return module


def refuse_bare_file(spec: str) -> None:
    """A model spec naming a ``.py`` file without its factory is one line listing the file's top-level callables
    (read with :mod:`ast`, nothing imported): ``mymodel.py`` -> did you mean ``mymodel.py:make``?"""
    if not (isinstance(spec, str) and spec.endswith(".py")) or is_user_spec(spec):
        return
    import ast

    path = project_path(spec)
    try:
        tree = ast.parse(path.read_text())
        names = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name[0] != "_"]
    except (OSError, SyntaxError, ValueError):
        names = []
    guess = f"{spec}:{names[0]}" if names else f"{spec}:FACTORY"
    raise ModelError(
        f"model: {spec!r} is a Python file: name the function that builds the module, as {guess} "
        f"(top-level callables there: {', '.join(names) or 'none found'})"
    )


def _make(spec: UserModelSpec) -> nn.Module:
    module = _import(spec)
    factory = getattr(module, spec.factory, None)
    if factory is None or not callable(factory):
        names = sorted(
            n
            for n, v in vars(module).items()
            if callable(v) and not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
        )
        raise ModelError(
            f"{spec.where}: no factory {spec.factory!r} in the file (callables there: {', '.join(names) or 'none'})"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            net = factory()
        except TypeError as e:
            raise ModelError(f"{spec.where}: the factory must take no arguments ({e})") from e
    if not isinstance(net, nn.Module):
        raise ModelError(f"{spec.where}: the factory returned {type(net).__name__}, expected a torch.nn.Module")
    return net


def detect_kind(net: nn.Module, where: str) -> str:
    """``kspace`` when ``forward`` takes two required arguments, ``image`` when it takes one."""
    params = [
        p
        for p in inspect.signature(net.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if len(params) == 2:
        return "kspace"
    if len(params) == 1:
        return "image"
    raise ModelError(
        f"{where}: cannot tell the model kind from forward{inspect.signature(net.forward)} (one argument: "
        "image, two: kspace); give --model-kind kspace|image"
    )


def parameter_count(net: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return int(sum(p.numel() for p in net.parameters()))


class UserRecon(Reconstructor):
    """A user's module behind advmri's :class:`~advmri.models.networks.Reconstructor` call (see the module
    docstring)."""

    def __init__(self, net: nn.Module, spec: UserModelSpec, kind: str):
        super().__init__(net, kind, {"file": str(spec.path), "factory": spec.factory, "kind": kind})
        self.kind = spec.factory  # the results tables' "model" column: the factory's name
        self.model_kind = kind
        self.where = spec.where
        self.sha256 = file_sha256(spec.path)

    def _call(self, *args: torch.Tensor) -> torch.Tensor:
        """The user's forward; an exception in it is one line naming the file, the factory and the inputs."""
        try:
            if self.precision == "bf16":
                with torch.autocast(device_type=args[0].device.type, dtype=torch.bfloat16):
                    return self.net(*args).float()
            return self.net(*args)
        except ModelError:
            raise
        except Exception as e:  # noqa: BLE001 - the user's code: one line naming it
            shapes = ", ".join(f"{tuple(a.shape)} {str(a.dtype).replace('torch.', '')}" for a in args)
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            kind = "an image" if self.model_kind == "image" else "a k-space"
            raise ModelError(
                f"{self.where}: forward({shapes}) raised {e.__class__.__name__}: {first} "
                f"({kind} model: `advmri benchmark --help` says what it gets)"
            ) from e

    def _checked(self, out, batch: int, crop: Sequence[int], image_kind: bool) -> torch.Tensor:
        h, w = int(crop[0]), int(crop[1])
        expected = f"({batch}, 1, {h}, {w})" if image_kind else f"({batch}, {h}, {w}) or larger"
        if not isinstance(out, torch.Tensor):
            raise ModelError(f"{self.where}: forward returned {type(out).__name__}, expected a tensor {expected}")
        got = tuple(out.shape)
        if out.dim() >= 4 and out.shape[-1] == 2 and w != 2:
            raise ModelError(
                f"{self.where}: output shape {got} looks like a complex image as (..., 2) real/imaginary; return "
                f"its magnitude (fastmri.complex_abs(out), or an RSS over coils), shape {expected}"
            )
        if out.dim() == 4 and out.shape[1] == 1:
            out = out[:, 0]
        if out.is_complex() or not out.is_floating_point():
            raise ModelError(
                f"{self.where}: output dtype {out.dtype}, expected a real floating-point magnitude image {expected}"
            )
        ok = (
            out.dim() == 3
            and out.shape[0] == batch
            and (out.shape[-2:] == (h, w) if image_kind else out.shape[-2] >= h and out.shape[-1] >= w)
        )
        if not ok:
            raise ModelError(f"{self.where}: output shape {got}, expected {expected}")
        out = K.center_crop(out, (h, w)).float()  # (batch, H, W)
        if not bool(torch.isfinite(out).all()):
            raise ModelError(f"{self.where}: output has NaN or infinite values (shape {got})")
        return out

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        num_low_frequencies: int | torch.Tensor,
        crop: Sequence[int],
    ) -> torch.Tensor:
        """The user's module on k-space ``(b, coils, rows, cols)`` complex or on the zero-filled RSS image."""
        b = masked_kspace.shape[0]
        if self.model_kind == "kspace":
            out = self._call(
                K.to_real(masked_kspace).float(), _mask5(mask, b)
            )  # (b, coils, rows, cols, 2), (b,1,1,cols,1)
            return self._checked(out, b, crop, image_kind=False)
        x, mean, std = unet_input(zero_filled(masked_kspace, crop))  # the RSS of the zero-filled coil images
        out = self._checked(self._call(x.unsqueeze(1)), b, x.shape[-2:], image_kind=True)
        return out * std + mean


def load_user_model(spec: str, kind: str | None = None) -> UserRecon:
    """Import ``path.py``, call its factory, wrap the module (``kind`` overrides the spec's and the detection)."""
    s = parse_user_spec(spec)
    net = _make(s)
    kind = kind or s.kind or detect_kind(net, s.where)
    if kind not in KINDS:
        raise ModelError(f"model-kind: {kind!r} is not one of {', '.join(KINDS)}")
    return UserRecon(net, s, kind)
