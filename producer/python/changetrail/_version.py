"""The one place of the package's version (pyproject.toml reads it) and of
the libchangetrail ABI the ctypes mirrors are written for."""
__version__ = "0.1.0"
ABI_VERSION = "0.1"
