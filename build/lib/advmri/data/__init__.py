"""Data: the synthetic fastMRI-format knee set, fastMRI+ annotations, and slice data sets."""
