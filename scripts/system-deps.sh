#!/usr/bin/env bash
# Installs the system packages the test suite drives for real: GnuPG (the interop judge),
# Node.js (panva/jose interop), Chromium (the dashboard's browser test) and PostgreSQL (the shared
# store: the tests start their own throwaway cluster on 127.0.0.1, so the package's own cluster
# may stay stopped), and the OpenPGP peers of the interop matrix (sqop, gosop, pgpainless-cli,
# RNP), and SoftHSM2 (the PKCS#11 token the HSM tests make and throw away). Idempotent: does
# nothing when they are present.
set -euo pipefail
need=()
command -v gpg >/dev/null 2>&1 || need+=(gnupg)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
command -v sqop >/dev/null 2>&1 || need+=(sqop)
command -v gosop >/dev/null 2>&1 || need+=(gosop)
command -v pgpainless-cli >/dev/null 2>&1 || need+=(pgpainless-cli)
command -v rnp >/dev/null 2>&1 || need+=(rnp)
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
# Debian keeps initdb/pg_ctl in /usr/lib/postgresql/<version>/bin, off PATH.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  need+=(postgresql)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
