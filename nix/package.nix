# SPDX-FileCopyrightText: 2026 The ha-registry authors
# SPDX-License-Identifier: EUPL-1.2
#
# The `registry` binary, built as `make build` builds it: static
# (CGO_ENABLED=0), stripped, with the version stamped in.
{
  lib,
  buildGoModule,
  go,
  go_1_26 ? null,
  src,
  version ? "dev",
}:

let
  # go.mod asks for Go 1.26.8, and buildGoModule builds with
  # GOTOOLCHAIN=local: the Go of this nixpkgs has to be that new.
  toolchain = if lib.versionAtLeast go.version "1.26.8" || go_1_26 == null then go else go_1_26;
in
assert lib.assertMsg (lib.versionAtLeast toolchain.version "1.26.8")
  "ha-registry needs Go 1.26.8 or newer (see go.mod); this nixpkgs has Go ${toolchain.version}";

(buildGoModule.override { go = toolchain; }) {
  pname = "ha-registry";
  inherit version src;

  # The hash of `go mod vendor`'s output. After a change to go.mod, go.sum
  # or the imports, run nix/vendor-hash.sh --update (it computes this the
  # way Nix does, without Nix's store); `make test` checks that it is
  # current.
  vendorHash = "sha256-yTV2rohji3Kfb1WloiOl1wcFHoZNFfPaV3H6mCWCGSI=";

  subPackages = [ "cmd/registry" ];
  env.CGO_ENABLED = 0;
  ldflags = [
    "-s"
    "-w"
    "-X main.version=${version}"
  ];

  # The test suite needs a PostgreSQL server, an S3 server and real
  # registry clients (make test installs and starts them); the flake's
  # checks run the package in NixOS VMs instead.
  doCheck = false;

  meta = {
    description = "Highly available OCI distribution registry: stateless replicas on S3 with a PostgreSQL index";
    license = lib.licenses.eupl12;
    mainProgram = "registry";
    platforms = lib.platforms.unix;
  };
}
