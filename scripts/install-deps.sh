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
else
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-deps: done"
fi

# helm (ctest helm_check: deploy/helm through `helm lint` and `helm template`)
# is not in Debian: built from the Go module proxy into the cache directory,
# once (later runs find it and skip this). The first build took 3 min 39 s on
# 2 shared cores with an empty module cache (docs/operations.md). Needs Go
# (helm v3.22 wants go 1.26; an older go fetches that toolchain itself);
# without Go, or with CT_NO_HELM=1, nothing is installed and helm_check skips.
HELM_VERSION=v3.22.1
CT_CACHE_DIR=${CT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/changetrail}
GO=$(command -v go || { [ -x /usr/local/go/bin/go ] && echo /usr/local/go/bin/go; } || true)
if [ -x "$CT_CACHE_DIR/bin/helm" ]; then
  echo "install-deps: helm present ($CT_CACHE_DIR/bin/helm)"
elif [ "${CT_NO_HELM:-0}" = 1 ]; then
  echo "install-deps: helm not installed (CT_NO_HELM=1): ctest helm_check will skip"
elif [ -z "$GO" ]; then
  echo "install-deps: no Go, helm not installed: ctest helm_check will skip"
else
  echo "install-deps: building helm $HELM_VERSION into $CT_CACHE_DIR/bin (go install, a few minutes once)"
  mkdir -p "$CT_CACHE_DIR/bin"
  start=$(date +%s)
  # -X: `helm version` says v3.22.1, not the module's default "v3.22"
  # a failed build (no module proxy) costs the helm check, not the whole run
  if GOBIN="$CT_CACHE_DIR/bin" GOFLAGS="-p=2 -buildvcs=false" \
    "$GO" install -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"; then
    echo "install-deps: helm $HELM_VERSION built in $(( $(date +%s) - start )) s"
  else
    echo "install-deps: helm $HELM_VERSION could not be built: ctest helm_check will skip" >&2
  fi
fi
