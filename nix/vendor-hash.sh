#!/usr/bin/env bash
# SPDX-FileCopyrightText: 2026 The ha-registry authors
# SPDX-License-Identifier: EUPL-1.2
#
# The vendorHash of nix/package.nix, computed as Nix computes it, without
# nixpkgs or a Nix store: buildGoModule's go-modules derivation runs
# `go mod vendor` in the source and its output is that vendor directory,
# a fixed-output derivation whose hash is the SHA-256 of the directory's
# NAR serialization. This script runs the same `go mod vendor` on a copy
# of the files a flake build sees (those git tracks, plus new files git
# does not ignore, which will be tracked once committed) and hashes the
# result with Nix's own `nix hash path` (Debian's nix-bin).
#
#   nix/vendor-hash.sh            print the hash
#   nix/vendor-hash.sh --check    fail unless nix/package.nix has it (make test)
#   nix/vendor-hash.sh --update   write it into nix/package.nix
#
# Run --update after any change to go.mod, go.sum or the imports.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-print}"
case "$mode" in print | --check | --update) ;; *)
  echo "usage: $0 [--check|--update]" >&2
  exit 2
  ;;
esac

command -v nix >/dev/null || { echo "$0: needs nix (Debian: apt-get install nix-bin)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue # deleted in the work tree
  mkdir -p "$tmp/src/$(dirname "$f")"
  cp -p "$f" "$tmp/src/$f"
done
if [ -e "$tmp/src/vendor" ]; then
  echo "$0: the source has a vendor directory; buildGoModule wants vendorHash = null then" >&2
  exit 1
fi
# As buildGoModule: modules on, the toolchain at hand, no inherited flags.
(cd "$tmp/src" && GO111MODULE=on GOTOOLCHAIN=local GOFLAGS='' GOWORK=off go mod vendor)
hash="$(nix --extra-experimental-features nix-command hash path --type sha256 "$tmp/src/vendor")"

pinned="$(sed -n 's/^ *vendorHash = "\(sha256-[^"]*\)";.*/\1/p' nix/package.nix 2>/dev/null || true)"
case "$mode" in
print) echo "$hash" ;;
--check)
  if [ "$pinned" != "$hash" ]; then
    echo "nix/package.nix has vendorHash $pinned, but the Go dependencies hash to $hash: run nix/vendor-hash.sh --update" >&2
    exit 1
  fi
  echo "vendorHash $hash is current"
  ;;
--update)
  [ -n "$pinned" ] || { echo "$0: no vendorHash line in nix/package.nix" >&2; exit 1; }
  sed -i "s|vendorHash = \"$pinned\";|vendorHash = \"$hash\";|" nix/package.nix
  echo "vendorHash $hash written to nix/package.nix"
  ;;
esac
