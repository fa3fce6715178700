"""Pure tensor functions, no I/O: centred orthonormal FFTs and SENSE operators (kspace), undersampling masks (masks),
boxes and the fastMRI+ flip (boxes), box and image metrics (metrics), the thermal noise level as a budget's unit
(noiselevel).
"""

__all__ = ["boxes", "kspace", "masks", "metrics", "noiselevel"]
