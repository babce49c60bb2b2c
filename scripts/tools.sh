#!/usr/bin/env bash
# Installs the pinned test services hqd's tests start (MinIO, cognito-local) on first use.
# Usage: scripts/tools.sh [minio|cognito-local|all]
# Everything goes under $HQD_TOOLS_DIR (default ~/.cache/hqd/tools) so a machine that
# keeps its cache installs each tool once; a new machine installs it here, never by hand.
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
COGNITO_LOCAL_VERSION=5.3.0

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

what=${1:-all}
case "$what" in
  minio) install_minio ;;
  cognito-local) install_cognito_local ;;
  all) install_minio; install_cognito_local ;;
  *) echo "usage: $0 [minio|cognito-local|all]" >&2; exit 2 ;;
esac
echo "$TOOLS_DIR/bin"
