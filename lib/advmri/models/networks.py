"""fastMRI reconstruction models (E2E-VarNet, UNet) behind one entry point, and checkpoints.

Every model is wrapped as a :class:`Reconstructor` with the same call::

    recon = model(masked_kspace, mask, num_low_frequencies, crop)
    # masked_kspace: (batch, coils, rows, cols) complex; mask: (batch, cols) bool or (cols,)
    # num_low_frequencies: int or (batch,) long; crop: (H, W)  ->  (batch, H, W) magnitude

so attacks treat both models alike. The UNet input is fastMRI's ``UnetDataTransform``:
zero-filled coil images, centre crop, complex abs, RSS, instance normalisation (mean/std of
the image), clamp to +-6; its output is un-normalised with the same mean/std.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import torch
from fastmri.models import Unet, VarNet
from torch import nn

from advmri.core import kspace as K
from advmri.models import fastvarnet
from advmri.util.atomic import atomic_path
from advmri.util.atomic import write_text as atomic_write_text
from advmri.util.errors import UserError, check_choice
from advmri.util.paths import project_path

CONFIGS: dict[str, dict[str, dict[str, Any]]] = {
    "varnet": {
        # fastMRI knee multi-coil leaderboard E2E-VarNet
        "paper": dict(num_cascades=12, chans=18, pools=4, sens_chans=8, sens_pools=4),
        "small": dict(num_cascades=6, chans=8, pools=3, sens_chans=4, sens_pools=3),
        "tiny": dict(num_cascades=2, chans=4, pools=2, sens_chans=2, sens_pools=2),
    },
    "unet": {
        # fastMRI knee multi-coil leaderboard U-Net
        "paper": dict(in_chans=1, out_chans=1, chans=256, num_pool_layers=4, drop_prob=0.0),
        "small": dict(in_chans=1, out_chans=1, chans=24, num_pool_layers=4, drop_prob=0.0),
        "tiny": dict(in_chans=1, out_chans=1, chans=4, num_pool_layers=2, drop_prob=0.0),
    },
}


class OfficialWeights(TypedDict):
    """Where fastMRI publishes a model's weights (``sha256``: its digest, None while unknown)."""

    file: str
    url: str
    sha256: str | None


OFFICIAL: dict[str, OfficialWeights] = {
    # fastMRI's published knee multi-coil state_dicts (fastmri_examples/*/run_pretrained_*.py)
    "varnet": OfficialWeights(
        file="knee_leaderboard_state_dict.pt",
        url="https://dl.fbaipublicfiles.com/fastMRI/trained_models/varnet/knee_leaderboard_state_dict.pt",
        sha256=None,
    ),
    "unet": OfficialWeights(
        file="knee_mc_leaderboard_state_dict.pt",
        url="https://dl.fbaipublicfiles.com/fastMRI/trained_models/unet/knee_mc_leaderboard_state_dict.pt",
        sha256=None,
    ),
}


class CheckpointError(UserError):
    """A checkpoint is missing, corrupt or does not match the model. The message names the file."""

    fix = (
        "Restore the named checkpoint (its .sha256 or the digest inside it tells the intact file), retrain it, "
        "or give the right model spec (path, official:<kind>:PATH, classical:<method>)."
    )


def _mask5(mask: torch.Tensor, batch: int) -> torch.Tensor:
    """``(cols,)`` or ``(batch, cols)`` bool -> fastMRI's ``(batch, 1, 1, cols, 1)`` bool."""
    if mask.dim() == 1:
        mask = mask.unsqueeze(0).expand(batch, -1)
    return mask.bool().view(mask.shape[0], 1, 1, mask.shape[1], 1)


IMPLEMENTATIONS = ("fast", "fastmri")


class Reconstructor(nn.Module):
    """Common wrapper: masked multi-coil k-space -> cropped magnitude image."""

    kind: str = ""
    impl = "fast"

    def set_impl(self, impl: str) -> Reconstructor:
        """The forward implementation: ``fast`` (default) runs :mod:`advmri.models.fastvarnet` over the same
        modules (equal to fastMRI's forward to float32 rounding, 1.2-2x faster on CPU); ``fastmri`` calls
        fastMRI's own ``forward`` (the reference; also used whenever dropout is active in training)."""
        check_choice("impl", impl, IMPLEMENTATIONS)
        self.impl = impl
        return self

    def __init__(self, net: nn.Module, config: str, params: dict[str, Any]) -> None:
        super().__init__()
        self.net = net
        self.config = config
        self.params = dict(params)
        self.sha256: str | None = None  # of the weights file it was loaded from
        self.precision = "fp32"
        for m in self.net.modules():  # the convolution blocks (same parameters and state_dict keys)
            if type(m) is Unet:
                m.__class__ = MixedPrecisionUnet

    def set_precision(self, precision: str) -> Reconstructor:
        """``fp32`` or ``bf16``: with ``bf16`` the networks' U-Net convolution blocks run under autocast
        (bfloat16 on CPU AMX units and CUDA) and hand float32 back; FFTs, coil combination, data
        consistency, the U-Net input normalisation, the attack's projection and the metrics stay float32."""
        check_choice("precision", precision, PRECISIONS)
        self.precision = precision
        for m in self.net.modules():
            if isinstance(m, MixedPrecisionUnet):
                m.precision = precision
        return self

    if TYPE_CHECKING:  # nn.Module's __call__ returns Any; every Reconstructor returns the image

        def __call__(
            self,
            masked_kspace: torch.Tensor,
            mask: torch.Tensor,
            num_low_frequencies: int | torch.Tensor,
            crop: Sequence[int],
        ) -> torch.Tensor: ...

    def forward(
        self,
        masked_kspace: torch.Tensor,  # (batch, coils, rows, cols) complex
        mask: torch.Tensor,  # (batch, cols) or (cols,) bool
        num_low_frequencies: int | torch.Tensor,  # int or (batch,) long
        crop: Sequence[int],  # (H, W)
    ) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def freeze(self) -> Reconstructor:
        """Eval mode, no parameter gradients (attacks differentiate w.r.t. the input only)."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self


class VarNetRecon(Reconstructor):
    """fastMRI's E2E-VarNet (k-space in, magnitude image out), as a :class:`Reconstructor`."""

    kind = "varnet"

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        num_low_frequencies: int | torch.Tensor,
        crop: Sequence[int],
    ) -> torch.Tensor:
        """E2E-VarNet on ``(batch, coils, rows, cols)`` complex k-space -> ``(batch, H, W)`` magnitude."""
        b = masked_kspace.shape[0]
        nlf: int | torch.Tensor | None = num_low_frequencies
        if isinstance(nlf, torch.Tensor) and nlf.dim() > 0 and bool((nlf == nlf[0]).all()):
            nlf = int(nlf[0])  # fastMRI's sensitivity model takes an int or None
        elif isinstance(nlf, torch.Tensor) and nlf.dim() > 0:
            nlf = None  # let fastMRI derive it per sample from the mask
        if self.impl == "fast" and fastvarnet.supports(self.net):
            low = int(nlf) if isinstance(nlf, torch.Tensor) else nlf  # a 0-dim tensor: one value for the batch
            out = fastvarnet.varnet_forward(self.net, masked_kspace, _mask5(mask, b), low, self.precision == "bf16")
        else:
            out = self.net(K.to_real(masked_kspace), _mask5(mask, b), nlf)  # (batch, rows, cols)
        return K.center_crop(out, crop)


class UnetRecon(Reconstructor):
    """fastMRI's U-Net on the zero-filled RSS image (fastMRI's normalisation), as a :class:`Reconstructor`."""

    kind = "unet"

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        num_low_frequencies: int | torch.Tensor,
        crop: Sequence[int],
    ) -> torch.Tensor:
        """U-Net on the zero-filled RSS image of ``(batch, coils, rows, cols)`` k-space -> ``(batch, H, W)``."""
        x, mean, std = unet_input(zero_filled(masked_kspace, crop))  # (batch, H, W), (batch, 1, 1) twice
        if self.impl == "fast" and fastvarnet.supports(self.net):
            out = fastvarnet.unet_forward(self.net, x.unsqueeze(1), self.precision == "bf16").squeeze(1)
        else:
            out = self.net(x.unsqueeze(1)).squeeze(1)
        return out * std + mean


PRECISIONS = ("fp32", "bf16")


class MixedPrecisionUnet(Unet):
    """fastMRI's :class:`Unet` (the same parameters and state_dict) whose forward runs under bfloat16
    autocast when ``precision == 'bf16'`` and returns the input's dtype (float64 inputs never autocast).
    A subclass rather than a wrapper, so copies (``deepcopy``, ``.double()``) stay consistent."""

    precision = "fp32"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.precision == "fp32" or x.dtype == torch.float64:
            return super().forward(x)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
            out = super().forward(x)
        return out.to(x.dtype)


def unet_input(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """fastMRI's U-Net normalisation of ``(batch, H, W)`` images: ``(clamp((image - mean) / std, -6, 6), mean, std)``
    with the mean and standard deviation of each image (``(batch, 1, 1)``); the output is ``out * std + mean``."""
    mean = image.mean(dim=(-2, -1), keepdim=True)
    std = image.std(dim=(-2, -1), keepdim=True)
    return ((image - mean) / (std + 1e-11)).clamp(-6, 6), mean, std


def zero_filled(masked_kspace: torch.Tensor, crop: Sequence[int]) -> torch.Tensor:
    """fastMRI's UNet input image: ifft, complex centre crop, RSS. ``(..., coils, r, c)`` -> ``(..., H, W)``."""
    image = K.ifft2c(masked_kspace)
    h, w = crop
    if image.shape[-1] < w:  # as fastMRI's UnetDataTransform
        h = w = image.shape[-1]
    return K.rss(K.center_crop(image, (h, w)))


def build(kind: str, config: str = "small") -> Reconstructor:
    """Build an untrained model of ``kind`` (``varnet``/``unet``) and named ``config``."""
    check_choice("model", kind, sorted(CONFIGS))  # ParameterError (a ValueError): one line naming the parameter
    check_choice("config", config, sorted(CONFIGS[kind]))
    params = CONFIGS[kind][config]
    if kind == "varnet":
        return VarNetRecon(VarNet(**params), config, params)
    return UnetRecon(Unet(**params), config, params)


# ------------------------------------------------------------------------------------------
# checkpoints
def sha256_file(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """:func:`sha256_file`, remembered per (path, size, mtime) within this process (a sweep asks for the same
    checkpoint once per run)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        _FILE_DIGESTS[key] = sha256_file(path)
    return _FILE_DIGESTS[key]


def state_digest(state: dict) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a state_dict's tensors (sorted by name): stored inside
    the checkpoint, so a damaged file is detected even without its ``.sha256`` sidecar."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, model: Reconstructor, extra: dict | None = None) -> str:
    """Save ``{kind, config, params, state_dict, content_sha256, extra}`` atomically; write ``path.sha256``
    (the file's digest); return that digest."""
    path = project_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = model.net.state_dict()
    blob = {
        "kind": model.kind,
        "config": model.config,
        "params": model.params,
        "state_dict": state,
        "content_sha256": state_digest(state),
        "extra": extra or {},
    }
    buf = io.BytesIO()
    torch.save(blob, buf)
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    atomic_write_text(Path(str(path) + ".sha256"), f"{digest}  {path.name}\n")
    return digest


def _safe_load(path: Path):
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt / unsafe files
        raise CheckpointError(f"{path}: not a loadable checkpoint ({e.__class__.__name__}: {str(e)[:200]})") from e


def recorded_sha256(path: str | os.PathLike) -> str | None:
    """The digest in ``path.sha256`` (written by :func:`save_checkpoint`), or None when there is none."""
    side = Path(str(project_path(path)) + ".sha256")
    return (side.read_text().split() or [""])[0] if side.is_file() else None


def load_checkpoint(path: str | os.PathLike, verify: bool = True) -> tuple[Reconstructor, dict]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    With ``verify``, a ``path.sha256`` file, when present, must match. Returns ``(model, extra)``.
    """
    path = project_path(path)
    side = Path(str(path) + ".sha256")
    got = sha256_file(path) if path.is_file() else None
    want = recorded_sha256(path) if verify and got is not None else None
    if want is not None and got != want:
        raise CheckpointError(f"{path}: sha256 {got} does not match {side.name} ({want})")
    blob = _safe_load(path)
    if verify and got is not None and want is None and not (isinstance(blob, dict) and "content_sha256" in blob):
        warnings.warn(
            f"{path}: no {side.name} beside it and no digest inside it, so its integrity is unverified; "
            f"its sha256 {got} is recorded with the run",
            stacklevel=2,
        )
    if not isinstance(blob, dict) or not {"kind", "config", "state_dict"} <= set(blob):
        raise CheckpointError(f"{path}: not an advmri checkpoint (expected keys kind, config, state_dict)")
    model = build(blob["kind"], blob["config"]) if blob["config"] in CONFIGS.get(blob["kind"], {}) else None
    if model is None or model.params != blob.get("params", model.params):
        raise CheckpointError(f"{path}: unknown or changed model configuration {blob['kind']}/{blob['config']}")
    if (
        "content_sha256" in blob
        and isinstance(blob["state_dict"], dict)
        and all(isinstance(v, torch.Tensor) for v in blob["state_dict"].values())
    ):
        if state_digest(blob["state_dict"]) != blob["content_sha256"]:
            raise CheckpointError(
                f"{path}: damaged checkpoint (its weights do not match the digest stored inside "
                "it); restore the file or retrain"
            )
    _load_state(model, blob["state_dict"], path)
    model.sha256 = got
    return model, blob.get("extra", {})


def _load_state(model: Reconstructor, state: dict, path: Path) -> None:
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = sorted(state)[:4] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{path}: not a {model.kind} state_dict (found {keys}; an advmri checkpoint "
            "loads by its path, official weights with official:<kind>:PATH)"
        )
    try:
        model.net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        missing = [k for k in model.net.state_dict() if k not in state]
        hint = (
            f"{len(missing)} of its tensors missing (e.g. {missing[0]})" if missing else " ".join(str(e).split())[:300]
        )
        raise CheckpointError(
            f"{path}: weights do not fit fastMRI {model.kind}/{model.config} ({hint}); a checkpoint of the other model?"
        ) from e


def load_official(
    kind: str, path: str | os.PathLike | None = None, download: bool = False, cache: str | os.PathLike = "data/weights"
) -> Reconstructor:
    """Load fastMRI's official knee state_dict into the ``paper`` config.

    ``path``: a local ``.pt`` state_dict. Without it, ``cache/<official file>`` is used; if
    missing and ``download`` is set, it is fetched (sha256 checked when known); offline, a
    clear error says where to put the file.
    """
    if kind not in OFFICIAL:
        raise CheckpointError(f"official:{kind}: unknown official model (valid: {', '.join(sorted(OFFICIAL))})")
    info = OFFICIAL[kind]
    p = project_path(path) if path is not None else project_path(cache) / info["file"]
    if not p.is_file():
        if path is not None or not download:
            raise CheckpointError(
                f"{p}: official fastMRI {kind} weights not found. Download {info['url']} elsewhere and put it "
                f"at {Path(cache) / info['file']} (or pass its path)."
            )
        _download(info["url"], p, info["sha256"])
    digest = sha256_file(p)
    if info.get("sha256") and digest != info["sha256"]:
        raise CheckpointError(
            f"{p}: sha256 {digest} is not that of fastMRI's published {info['file']} ({info['sha256']})"
        )
    state = _safe_load(p)
    if isinstance(state, dict) and {"kind", "config", "state_dict"} <= set(state):
        raise CheckpointError(
            f"{p}: an advmri checkpoint ({state['kind']}/{state['config']}), not fastMRI's "
            f"official {kind} weights; pass it as the model path itself"
        )
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    model = build(kind, "paper")
    _load_state(model, state, p)
    model.sha256 = digest  # recorded with every run that uses it
    return model


def _download(url: str, dest: Path, sha256: str | None) -> None:
    import requests

    try:
        resp = requests.get(url, timeout=60)
        resp.raise_for_status()
    except requests.RequestException as e:
        raise CheckpointError(
            f"could not download {url} ({e.__class__.__name__}); offline? put the file at {dest}"
        ) from e
    digest = hashlib.sha256(resp.content).hexdigest()
    if sha256 is not None and digest != sha256:
        raise CheckpointError(f"{url}: sha256 {digest} != expected {sha256}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(resp.content)
    os.replace(tmp, dest)
    print(f"downloaded {url} -> {dest} (sha256 {digest})")
