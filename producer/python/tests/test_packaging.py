"""Packaging: the wheel built from producer/python with its build backend
(scikit-build-core, CMake) carries libchangetrail, installs into a fresh venv
and imports with no environment variable; the version is the C project's;
a library of another ABI is refused with a message that says what to do.

The wheel build compiles the library (about a minute): it runs when
CT_TEST_WHEEL=1 (ctest python_wheel), the rest always."""
import os
import re
import subprocess
import sys
import tempfile
import zipfile

import pytest

import changetrail
from changetrail import _version

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(PKG))


def test_version_from_one_place():
    with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        want = re.search(r"project\(changetrail VERSION ([0-9.]+)", f.read()).group(1)
    assert changetrail.__version__ == _version.__version__ == want
    assert changetrail.library_version().startswith(_version.ABI_VERSION + ".")


def test_abi_mismatch_is_refused_clearly(monkeypatch):
    lib = changetrail._load()
    monkeypatch.setattr(changetrail, "ABI_VERSION", "7.0")
    with pytest.raises(changetrail.ChangetrailError) as ei:
        changetrail._check_abi(lib)
    msg = str(ei.value)
    assert ei.value.code == changetrail.CT_ECONFIG
    assert "does not match the ABI this binding was written for (7.0)" in msg
    assert "CHANGETRAIL_LIB" in msg and changetrail.library_version() in msg


@pytest.mark.skipif(os.environ.get("CT_TEST_WHEEL") != "1", reason="the wheel build: CT_TEST_WHEEL=1")
def test_wheel_carries_the_library_and_imports_without_env():
    with tempfile.TemporaryDirectory(prefix="ct-wheel-") as d:
        env = {k: v for k, v in os.environ.items() if k not in ("CHANGETRAIL_LIB", "PYTHONPATH")}
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", os.path.join(d, "dist"), PKG], check=True, env=env, timeout=900)
        wheels = os.listdir(os.path.join(d, "dist"))
        assert len(wheels) == 1 and wheels[0].startswith(f"changetrail-{changetrail.__version__}-py3-none-linux_")
        whl = os.path.join(d, "dist", wheels[0])
        names = zipfile.ZipFile(whl).namelist()
        assert "changetrail/_lib/libchangetrail.so.0" in names
        assert "changetrail/templates/changetrail/object_history.html" in names
        assert "changetrail/history.py" in names and "changetrail/django.py" in names
        venv = os.path.join(d, "venv")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
        py = os.path.join(venv, "bin", "python")
        subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", whl], check=True, env=env,
                       timeout=300)
        out = subprocess.run([py, "-c", "import changetrail; print(changetrail.__version__, "
                              "changetrail.library_version(), changetrail._find_library())"],
                             check=True, capture_output=True, text=True, env=env, cwd=d, timeout=60).stdout.split()
        assert out[0] == out[1] == changetrail.__version__
        assert out[2].startswith(venv) and out[2].endswith("changetrail/_lib/libchangetrail.so.0")


@pytest.mark.skipif(os.environ.get("CT_TEST_WHEEL") != "1", reason="the wheel build: CT_TEST_WHEEL=1")
def test_manylinux_wheel_carries_its_dependencies(bootstrap, topic, reader):
    """tools/manylinux-wheel.sh: auditwheel repairs the wheel; installed in a
    fresh venv it loads librdkafka and jansson from the wheel itself and
    delivers an event to the real broker."""
    pytest.importorskip("auditwheel")
    with tempfile.TemporaryDirectory(prefix="ct-manylinux-") as d:
        env = {k: v for k, v in os.environ.items() if k not in ("CHANGETRAIL_LIB", "PYTHONPATH")}
        env["PYTHON"] = sys.executable
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        out = subprocess.run([os.path.join(PKG, "tools", "manylinux-wheel.sh"), os.path.join(d, "dist")],
                             check=True, capture_output=True, text=True, env=env, timeout=900).stdout.split()
        whl = out[-1]
        assert re.search(r"-py3-none-manylinux_\d+_\d+_[a-z0-9_]+\.whl$", whl), whl
        names = zipfile.ZipFile(whl).namelist()
        bundled = [n for n in names if n.startswith("changetrail.libs/")]
        for lib in ("librdkafka", "libjansson"):
            assert any(os.path.basename(n).startswith(lib) for n in bundled), (lib, bundled)
        venv = os.path.join(d, "venv")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
        py = os.path.join(venv, "bin", "python")
        subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", whl], check=True, env=env,
                       timeout=300)
        code = ("import changetrail, sys\n"
                "p = changetrail.Producer({'source': 'manylinux', 'topic': sys.argv[2],"
                " 'kafka.bootstrap.servers': sys.argv[1]})\n"
                "print(p.emit_insert('wheels', '1', {'ok': True})); p.flush(10); p.close()\n"
                "print(sorted({l.split()[-1] for l in open('/proc/self/maps')"
                " if 'librdkafka' in l or 'libjansson' in l}))\n")
        r = subprocess.run([py, "-c", code, bootstrap, topic], check=True, capture_output=True, text=True,
                           env=env, cwd=d, timeout=120).stdout.splitlines()
        maps = eval(r[1])  # a list of paths printed by the child
        assert len(maps) == 2 and all("/site-packages/changetrail.libs/" in m for m in maps), maps
    assert [m["value"]["event_id"] for m in reader.read(topic, expect=1)] == [r[0]]
