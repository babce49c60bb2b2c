#!/usr/bin/env bash
# Installs the pinned test services hqd's tests start (MinIO, cognito-local, Pebble) on first use.
# Usage: scripts/tools.sh [minio|cognito-local|pebble|chromium|podman|tflint|tfsec|goimports|caddy|mc|rclone|all] (all: what make test needs)
# Everything goes under $HQD_TOOLS_DIR (default ~/.cache/hqd/tools) so a machine that
# keeps its cache installs each tool once; a new machine installs it here, never by hand.
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
COGNITO_LOCAL_VERSION=5.3.0
PEBBLE_VERSION=v2.10.1
TFLINT_VERSION=v0.64.0
TFSEC_VERSION=v1.26.0
GOIMPORTS_VERSION=v0.52.0 # golang.org/x/tools: make vet's import grouping check
CADDY_VERSION=v2.11.9 # make bench only (P6: the app's assets against Caddy's file_server)
# make bench only (P11: hq sync --direct against mc mirror and rclone sync).
# mc has no semver tags (its releases are RELEASE.<date>): this is the
# commit the Go module proxy answers for @latest (2025-03-13).
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9
RCLONE_VERSION=v1.76.0

TOOLS_DIR=${HQD_TOOLS_DIR:-$HOME/.cache/hqd/tools}
mkdir -p "$TOOLS_DIR/bin"

say() { echo "tools: $*" >&2; }

install_minio() {
  local stamp="$TOOLS_DIR/bin/.minio-$MINIO_VERSION"
  if [[ -x "$TOOLS_DIR/bin/minio" && -f "$stamp" ]]; then return; fi
  say "building minio $MINIO_VERSION (2-3 minutes the first time)"
  GOBIN="$TOOLS_DIR/bin" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION"
  rm -f "$TOOLS_DIR"/bin/.minio-*
  touch "$stamp"
}

install_cognito_local() {
  local dir="$TOOLS_DIR/cognito-local-$COGNITO_LOCAL_VERSION"
  if [[ -x "$dir/node_modules/.bin/cognito-local" ]]; then
    ln -sf "$dir/node_modules/.bin/cognito-local" "$TOOLS_DIR/bin/cognito-local"
    return
  fi
  say "installing cognito-local $COGNITO_LOCAL_VERSION from npm"
  mkdir -p "$dir"
  (cd "$dir" && npm install --no-audit --no-fund --silent "cognito-local@$COGNITO_LOCAL_VERSION" >&2)
  ln -sf "$dir/node_modules/.bin/cognito-local" "$TOOLS_DIR/bin/cognito-local"
}

install_pebble() {
  local stamp="$TOOLS_DIR/bin/.pebble-$PEBBLE_VERSION"
  if [[ -x "$TOOLS_DIR/bin/pebble" && -x "$TOOLS_DIR/bin/pebble-challtestsrv" && -f "$stamp" ]]; then return; fi
  say "building pebble $PEBBLE_VERSION"
  GOBIN="$TOOLS_DIR/bin" GOFLAGS=-buildvcs=false go install \
    "github.com/letsencrypt/pebble/v2/cmd/pebble@$PEBBLE_VERSION" \
    "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@$PEBBLE_VERSION"
  rm -f "$TOOLS_DIR"/bin/.pebble-*
  touch "$stamp"
}

install_go_tool() { # name module version
  local stamp="$TOOLS_DIR/bin/.$1-$3"
  if [[ -x "$TOOLS_DIR/bin/$1" && -f "$stamp" ]]; then return; fi
  say "building $1 $3"
  GOBIN="$TOOLS_DIR/bin" GOFLAGS=-buildvcs=false go install "$2@$3"
  rm -f "$TOOLS_DIR"/bin/."$1"-*
  touch "$stamp"
}

# Chromium for the PWA's browser tests: Debian's package (a browser cannot
# be downloaded by npm here). Needs root, as on every build machine.
install_chromium() {
  if [[ -x /usr/bin/chromium ]]; then return; fi
  say "installing Debian's chromium (apt)"
  if [[ $(id -u) -ne 0 ]]; then echo "tools: chromium is missing and only root can install it: apt-get install chromium" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
}

# Podman with runc for make test-image (the Dockerfile's runtime stage run
# locally; crun refuses these machines' hybrid cgroup layout). Debian's
# packages; needs root.
install_podman() {
  if command -v podman >/dev/null && command -v runc >/dev/null; then return; fi
  say "installing Debian's podman and runc (apt)"
  if [[ $(id -u) -ne 0 ]]; then echo "tools: podman is missing and only root can install it: apt-get install podman runc" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc >&2
}

what=${1:-all}
case "$what" in
  minio) install_minio ;;
  cognito-local) install_cognito_local ;;
  pebble|pebble-challtestsrv) install_pebble ;;
  chromium) install_chromium ;;
  podman) install_podman ;;
  tflint) install_go_tool tflint github.com/terraform-linters/tflint "$TFLINT_VERSION" ;;
  tfsec) install_go_tool tfsec github.com/aquasecurity/tfsec/cmd/tfsec "$TFSEC_VERSION" ;;
  goimports) install_go_tool goimports golang.org/x/tools/cmd/goimports "$GOIMPORTS_VERSION" ;;
  caddy) install_go_tool caddy github.com/caddyserver/caddy/v2/cmd/caddy "$CADDY_VERSION" ;;
  mc) install_go_tool mc github.com/minio/mc "$MC_VERSION" ;;
  rclone) install_go_tool rclone github.com/rclone/rclone "$RCLONE_VERSION" ;;
  all) install_minio; install_cognito_local; install_pebble; install_chromium; install_podman
       install_go_tool tflint github.com/terraform-linters/tflint "$TFLINT_VERSION"
       install_go_tool tfsec github.com/aquasecurity/tfsec/cmd/tfsec "$TFSEC_VERSION"
       install_go_tool goimports golang.org/x/tools/cmd/goimports "$GOIMPORTS_VERSION" ;;
  *) echo "usage: $0 [minio|cognito-local|pebble|chromium|podman|tflint|tfsec|goimports|caddy|mc|rclone|all]" >&2; exit 2 ;;
esac
echo "$TOOLS_DIR/bin"
