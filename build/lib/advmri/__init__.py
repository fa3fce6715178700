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
"""

__version__ = "0.1.0"
