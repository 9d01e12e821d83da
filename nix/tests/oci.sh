#!/usr/bin/env bash
# SPDX-FileCopyrightText: 2026 The ha-registry authors
# SPDX-License-Identifier: EUPL-1.2
#
# The VM tests' registry client (installed there as `oci`). It pushes
# images with crane, each with one layer holding a file of fresh random
# bytes, writes what it pushed to a ledger ("REF SHA256" lines), and pulls
# images back to compare those bytes. Plain HTTP: the tests' registry has
# no TLS. It runs as well against `make run` (HOST localhost:5000).
#
#   oci push REF LEDGER         push one image and add it to LEDGER
#   oci verify LEDGER           pull every image in LEDGER; fail on any difference
#   oci loop PREFIX LEDGER STOP SUMMARY [MAX [SECONDS]]
#                               push PREFIX:1, PREFIX:2, ... and pull each back,
#                               until the file STOP exists (or MAX images, or
#                               SECONDS pass); write "images N" and "failed N"
#                               to SUMMARY; fail if anything failed
#   oci corpus HOST LEDGER      push the disaster-recovery corpus: repositories
#                               with several tags, a tag sharing a manifest, an
#                               index, an artifact attached through referrers
#   oci dump HOST               print what the index serves, sorted: catalog,
#                               every tag's digest, every manifest's referrers
set -euo pipefail

usage() {
  sed -n '/^#   oci/,/^set /p' "$0" | sed '$d' | cut -c3- >&2
  exit 2
}

# quiet COMMAND...: run it, showing its output only when it fails.
quiet() {
  local out
  if ! out="$("$@" 2>&1)"; then
    echo "$out" >&2
    return 1
  fi
}

# push REF LEDGER
push() {
  local ref="$1" ledger="$2" dir
  dir="$(mktemp -d)"
  head -c "$((65536 + RANDOM))" /dev/urandom >"$dir/payload"
  tar -C "$dir" -cf "$dir/layer.tar" payload
  if ! quiet crane append --insecure -f "$dir/layer.tar" -t "$ref"; then
    rm -rf "$dir"
    echo "oci: pushing $ref failed" >&2
    return 1
  fi
  echo "$ref $(sha256sum <"$dir/payload" | cut -d' ' -f1)" >>"$ledger"
  rm -rf "$dir"
}

# pulled REF: the SHA-256 of the payload file in the image REF.
pulled() {
  crane export --insecure "$1" - | tar -xOf - payload | sha256sum | cut -d' ' -f1
}

# check REF WANT
check() {
  local got
  got="$(pulled "$1")" || got=""
  if [ "$got" != "$2" ]; then
    echo "oci: $1 pulled back ${got:-nothing}, pushed $2" >&2
    return 1
  fi
}

# verify LEDGER
verify() {
  local ledger="$1" ref want n=0 bad=0
  while read -r ref want; do
    n=$((n + 1))
    check "$ref" "$want" || bad=$((bad + 1))
  done <"$ledger"
  echo "verified $((n - bad)) of $n images"
  [ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
}

# loop PREFIX LEDGER STOP SUMMARY [MAX [SECONDS]]
loop() {
  local prefix="$1" ledger="$2" stop="$3" summary="$4" max="${5:-1000}" seconds="${6:-1200}"
  local i=0 failed=0 ref want
  : >"$ledger"
  while [ ! -e "$stop" ] && [ "$i" -lt "$max" ] && [ "$SECONDS" -lt "$seconds" ]; do
    i=$((i + 1))
    if push "$prefix:$i" "$ledger"; then
      read -r ref want < <(tail -n 1 "$ledger")
      check "$ref" "$want" || failed=$((failed + 1))
    else
      failed=$((failed + 1))
    fi
  done
  printf 'images %d\nfailed %d\n' "$i" "$failed" >"$summary.tmp"
  mv "$summary.tmp" "$summary"
  echo "pushed and pulled $i images, $failed failed"
  [ "$failed" -eq 0 ]
}

# corpus HOST LEDGER
corpus() {
  local host="$1" ledger="$2" repo tag dir line
  for repo in dr/alpha dr/beta team-x/tools/gamma; do
    for tag in v1 v2; do
      push "$host/$repo:$tag" "$ledger"
    done
    quiet crane tag --insecure "$host/$repo:v2" latest
    line="$(grep "^$host/$repo:v2 " "$ledger")"
    echo "${line/:v2 /:latest }" >>"$ledger"
  done
  quiet crane index append --insecure -m "$host/dr/alpha:v1" -m "$host/dr/beta:v1" -t "$host/dr/multi:v1"
  dir="$(mktemp -d)"
  echo '{"sbom": "of dr/alpha:v1"}' >"$dir/sbom.json"
  (cd "$dir" && quiet oras attach --plain-http --artifact-type application/vnd.example.sbom.v1+json \
    "$host/dr/alpha:v1" sbom.json:application/json)
  rm -rf "$dir"
}

# dump HOST
dump() {
  local host="$1" repo tag digest
  curl -fsS "http://$host/v2/_catalog?n=10000" | jq -S .
  for repo in $(curl -fsS "http://$host/v2/_catalog?n=10000" | jq -r '.repositories[]'); do
    for tag in $(curl -fsS "http://$host/v2/$repo/tags/list?n=10000" | jq -r '(.tags // [])[]' | sort); do
      digest="$(crane digest --insecure "$host/$repo:$tag")"
      echo "$repo:$tag $digest"
      curl -fsS "http://$host/v2/$repo/referrers/$digest" |
        jq -S '[.manifests[] | {artifactType, digest, mediaType, size}] | sort_by(.digest)'
    done
  done
}

[ "$#" -ge 1 ] || usage
cmd="$1"
shift
case "$cmd" in
push) [ "$#" -eq 2 ] || usage; push "$@" ;;
verify) [ "$#" -eq 1 ] || usage; verify "$@" ;;
loop) if [ "$#" -lt 4 ] || [ "$#" -gt 6 ]; then usage; fi; loop "$@" ;;
corpus) [ "$#" -eq 2 ] || usage; corpus "$@" ;;
dump) [ "$#" -eq 1 ] || usage; dump "$@" ;;
*) usage ;;
esac
