"""pfstui: a terminal UI for building Subaru PFS calibration products with the LSST middleware."""

__version__ = "0.1.0"
