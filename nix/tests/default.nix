# SPDX-FileCopyrightText: 2026 The ha-registry authors
# SPDX-License-Identifier: EUPL-1.2
#
# The NixOS VM tests, as the flake's checks: `nix flake check`, or one of
# them with `nix build .#checks.x86_64-linux.ha`. They need a machine with
# Nix and KVM; CI (Debian, no Nix store) only parses these files.
{ pkgs, module }:

let
  common = import ./common.nix { inherit pkgs module; };
  run = test: pkgs.testers.runNixOSTest (import test { inherit common; });
in
{
  # Two replicas behind haproxy: push, lose a replica, pull; restart each
  # replica in turn under a push loop with zero failed requests.
  ha = run ./ha.nix;
  # Push, drop the database, registry migrate && registry rebuild-db, pull
  # everything back.
  disaster-recovery = run ./disaster-recovery.nix;
  # registry gc on both replicas at once: one runs, the other skips.
  gc = run ./gc.nix;
}
