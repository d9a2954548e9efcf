#!/usr/bin/env python3
"""Runs the binding's pytest suite (ctest python_binding). Exits 77 (skip)
when this Python has no pytest, i.e. is not the venv of tests/requirements.txt."""
import os
import sys

try:
    import pytest
except ImportError:
    print("skip: pytest not installed in this Python (install tests/requirements.txt)")
    sys.exit(77)

here = os.path.dirname(os.path.abspath(__file__))
sys.exit(pytest.main(["-q", "-rs", "-p", "no:cacheprovider", here]))
