"""advmri: realistic adversarial perturbations against deep-learning MRI reconstruction.

Conventions used throughout the package (they follow fastMRI):

* k-space and coil images are complex tensors ``(..., coils, rows, cols)`` with rows the
  readout (frequency-encoding) direction and cols the phase-encoding direction;
* FFTs are centred and orthonormal (``fastmri.fft2c`` / ``fastmri.ifft2c``);
* magnitude images are root-sum-of-squares (RSS) over coils, centre-cropped to the
  reconstruction size (320x320 for fastMRI knee);
* image arrays are indexed ``[row, col]`` = ``[y, x]`` with ``y`` growing downwards, exactly as
  ``reconstruction_rss`` is stored in the HDF5 files; fastMRI+ boxes are converted into this
  orientation on reading (see :mod:`advmri.data.annotations`).

Layers, lowest first; a module imports only from its own layer or lower ones (``tests/test_layers.py``):

* :mod:`advmri.util` -- errors, paths, the parameter schema, atomic writes, locks, provenance;
* :mod:`advmri.core` -- pure tensor functions: k-space, masks, boxes, metrics;
* :mod:`advmri.data` -- the synthetic fastMRI-format data, fastMRI+ annotations, slice data sets;
* :mod:`advmri.models` -- networks, checkpoints, classical methods, training, user models;
* :mod:`advmri.attacks` -- adversarial k-space noise and rotation (batched);
* :mod:`advmri.experiments` -- run parameters and records, sweeps, verification, cached tables;
* :mod:`advmri.report` -- statistics, analysis, figures, cards, the article;
* :mod:`advmri.app` -- command line, widgets, servers, the main job.
"""

__version__ = "0.1.0"
__all__ = ["__version__", "util", "core", "data", "models", "attacks", "experiments", "report", "app"]

from advmri import _moved

_moved.install()  # old flat module names (advmri.run, python -m advmri.attack, ...) still resolve
