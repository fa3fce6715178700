"""Models: fastMRI's E2E-VarNet and U-Net behind one :class:`Reconstructor` call, checkpoints loaded weights-only
with a verified sha256 (networks), CG-SENSE and l1-wavelet (classical), training (train), the multi-seed zoo
trained to a plateau (zoo), a user's own module (usermodel), and the fast E2E-VarNet forward over fastMRI's
modules (fastvarnet). The names below are the public API; ``advmri.models.networks`` holds their definitions."""

from advmri.models.networks import (
    CONFIGS,
    OFFICIAL,
    PRECISIONS,
    CheckpointError,
    Reconstructor,
    build,
    file_sha256,
    load_checkpoint,
    load_official,
    save_checkpoint,
    sha256_file,
    unet_input,
    zero_filled,
)

__all__ = [
    "CONFIGS",
    "OFFICIAL",
    "PRECISIONS",
    "CheckpointError",
    "Reconstructor",
    "build",
    "file_sha256",
    "load_checkpoint",
    "load_official",
    "save_checkpoint",
    "sha256_file",
    "unet_input",
    "zero_filled",
    "classical",
    "fastvarnet",
    "networks",
    "train",
    "usermodel",
    "zoo",
]
