#!/usr/bin/env bash
# Installs what tend needs from Debian's packages when it is missing: the PostgreSQL server
# binaries (tend dev and the tests start a private cluster) and Chromium (browser tests of the
# capture inbox). Needs root for apt-get; otherwise it says what to install.
set -euo pipefail

need=()
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  need+=(postgresql)
fi
if ! command -v chromium >/dev/null 2>&1; then
  need+=(chromium)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "tend needs these Debian packages: ${need[*]} — install them (e.g. sudo apt-get install ${need[*]})" >&2
  # Postgres is required; Chromium only for the browser test, which skips without it outside CI.
  if [[ " ${need[*]} " == *" postgresql "* ]]; then exit 1; fi
  exit 0
fi
echo "installing ${need[*]} from Debian …" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
