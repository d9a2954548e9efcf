"""The package's version, from one place: the version of the C project
(`project(changetrail VERSION x.y.z)` in the repository's CMakeLists.txt),
which pyproject.toml reads when the wheel is built. In a checkout it is read
from that file; installed, from the package's metadata. ABI_VERSION is the
libchangetrail ABI the ctypes mirrors are written for (checked at load)."""
import os
import re

ABI_VERSION = "0.1"


def _version() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    root_cmake = os.path.join(here, "..", "..", "..", "CMakeLists.txt")
    if os.path.isfile(os.path.join(here, "..", "pyproject.toml")) and os.path.isfile(root_cmake):
        with open(root_cmake, encoding="utf-8") as f:
            m = re.search(r"project\(changetrail VERSION ([0-9]+\.[0-9]+\.[0-9]+)", f.read())
        if m:
            return m.group(1)
    try:
        from importlib.metadata import version
        return version("changetrail")
    except Exception:
        return "0+unknown"


__version__ = _version()
