# SPDX-FileCopyrightText: 2026 The ha-registry authors
# SPDX-License-Identifier: EUPL-1.2
#
#   nix build                         the `registry` binary (packages.default)
#   nix develop                       Go and the services and clients the tests use
#   nix flake check                   the package and the NixOS VM tests (needs KVM)
#   imports = [ ha-registry.nixosModules.default ];   services.ha-registry
#
# The module and the VM tests live in nix/. README.md, "NixOS", shows a
# configuration.
{
  description = "ha-registry: a highly available OCI registry, stateless replicas on S3 with a PostgreSQL index";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      # The VM tests need Linux; so does the module.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      version = self.shortRev or "dirty";
      build = pkgs: pkgs.callPackage ./nix/package.nix {
        src = self;
        inherit version;
      };
      packageFor = pkgs: self.packages.${pkgs.stdenv.hostPlatform.system}.default;
    in
    {
      packages = forAllSystems (pkgs: {
        default = build pkgs;
        ha-registry = packageFor pkgs;
      });

      overlays.default = final: prev: { ha-registry = build final; };

      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.ha-registry.package = lib.mkDefault (packageFor pkgs);
        };

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            # The Go the package builds with (go.mod wants 1.26.8 or newer).
            (packageFor pkgs).go
            pkgs.postgresql
            pkgs.versitygw
            pkgs.haproxy
            pkgs.go-containerregistry # crane
            pkgs.oras
            pkgs.regclient # regctl
            pkgs.skopeo
            pkgs.reuse
            pkgs.jq
            pkgs.gnumake
          ];
        };
      });

      checks = forAllSystems (
        pkgs:
        import ./nix/tests {
          inherit pkgs;
          module = self.nixosModules.default;
        }
        // {
          package = packageFor pkgs;
        }
      );
    };
}
