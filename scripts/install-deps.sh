#!/usr/bin/env bash
# Installs every build and test dependency of changetrail on a fresh Debian
# (bookworm) machine. Idempotent: packages already present are left alone, and
# `apt-get update` only runs when something is missing.
set -euo pipefail

# prometheus: for its promtool, which checks deploy/monitoring (ctest
# monitoring_check). The package also brings the Prometheus server; on a
# machine running systemd its postinst may start it (port 9090): nothing of
# changetrail uses it (`systemctl disable --now prometheus` if unwanted).
# zsh: `zsh -n` checks the zsh completion (ctest completion_check); scdoc: the
# man pages (man/*.scd).
PKGS=(
  build-essential cmake ninja-build pkg-config git
  librdkafka-dev libmongoc-dev libbson-dev libjansson-dev libuv1-dev libhttp-parser-dev libssl-dev
  libjemalloc-dev libcmocka-dev libmicrohttpd-dev chromium chromium-driver clang lld llvm libclang-rt-14-dev valgrind
  kcat python3 python3-venv curl ca-certificates systemd
  prometheus zsh scdoc
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
