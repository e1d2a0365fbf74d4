#!/usr/bin/env bash
# Installs the system packages the test suite drives for real: GnuPG (the interop judge),
# Node.js (panva/jose interop) and Chromium (the dashboard's browser test). Idempotent.
set -euo pipefail
need=()
command -v gpg >/dev/null 2>&1 || need+=(gnupg)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
