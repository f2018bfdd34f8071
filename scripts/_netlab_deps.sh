#!/usr/bin/env bash
# Install what the NAT lab (tests/natlab) needs: iproute2 and nftables. Idempotent: does
# nothing when `ip` and `nft` are present, and nothing (the lab's tests then skip) when not
# root or apt-get is missing.
set -euo pipefail
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v nft >/dev/null || missing+=(nftables)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "NAT lab: ${missing[*]} missing and cannot be installed here (the lab's tests skip)" >&2
  exit 0
fi
echo "== apt-get install ${missing[*]} (NAT lab)"
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
  || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
       apt-get install -y --no-install-recommends "${missing[@]}"; }
