"""Data: the synthetic fastMRI-format knee set (synth, phantom), fastMRI HDF5 files (fastmri_h5) and their
content fingerprints (fingerprint), fastMRI+ annotations (annotations) and annotated slice data sets (dataset)."""

__all__ = ["annotations", "dataset", "fastmri_h5", "fingerprint", "phantom", "synth"]
