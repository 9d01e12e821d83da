# SPDX-FileCopyrightText: 2026 The ha-registry authors
# SPDX-License-Identifier: EUPL-1.2
#
# The machines the VM tests are made of: an S3 server (versitygw, as in
# `make test`), a PostgreSQL server, registry replicas configured through
# the NixOS module, haproxy running deploy/haproxy/haproxy.cfg, and a
# client with crane, oras and the `oci` helper (oci.sh).
{ pkgs, module }:

let
  inherit (pkgs) lib;

  # Test credentials. A real deployment keeps its secrets out of the Nix
  # store (services.ha-registry.environmentFile as a string path).
  s3 = {
    port = 7070;
    accessKey = "registrytest";
    secretKey = "registrytestsecret";
    bucket = "registry";
  };
  dbPassword = "registrytestpassword";

  oci = pkgs.writeShellScriptBin "oci" ''
    export PATH=${
      lib.makeBinPath [
        pkgs.coreutils
        pkgs.curl
        pkgs.gnugrep
        pkgs.gnused
        pkgs.gnutar
        pkgs.go-containerregistry
        pkgs.jq
        pkgs.oras
      ]
    }:$PATH
    exec ${pkgs.bash}/bin/bash ${./oci.sh} "$@"
  '';

  # The repository's haproxy example, unchanged but for its third
  # replica: these tests run two.
  haproxyConfig =
    let
      file = builtins.readFile ../../deploy/haproxy/haproxy.cfg;
      thirdReplica = "    server r3 \"\${REGISTRY_REPLICA_3}\"\n";
    in
    assert lib.assertMsg (lib.hasInfix thirdReplica file)
      "deploy/haproxy/haproxy.cfg no longer has the server line this test removes";
    builtins.replaceStrings [ thirdReplica ] [ "" ] file;
in
rec {
  inherit oci s3;

  s3Node = {
    networking.firewall.allowedTCPPorts = [ s3.port ];
    systemd.services.versitygw = {
      description = "versitygw S3 server (posix backend)";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      serviceConfig = {
        DynamicUser = true;
        StateDirectory = "versitygw";
        # A directory under the posix backend's root is a bucket.
        ExecStartPre = "${pkgs.coreutils}/bin/mkdir -p /var/lib/versitygw/${s3.bucket}";
        ExecStart = lib.concatStringsSep " " [
          "${pkgs.versitygw}/bin/versitygw"
          "--access ${s3.accessKey}"
          "--secret ${s3.secretKey}"
          "--region us-east-1"
          "--port :${toString s3.port}"
          "posix /var/lib/versitygw"
        ];
        Restart = "on-failure";
      };
    };
  };

  dbNode = {
    networking.firewall.allowedTCPPorts = [ 5432 ];
    services.postgresql = {
      enable = true;
      enableTCPIP = true;
      authentication = ''
        host registry registry 0.0.0.0/0 scram-sha-256
        host registry registry ::/0 scram-sha-256
      '';
      initialScript = pkgs.writeText "registry-init.sql" ''
        CREATE ROLE registry LOGIN PASSWORD '${dbPassword}';
        CREATE DATABASE registry OWNER registry;
      '';
    };
  };

  # A replica as an operator would configure one: the secrets (S3 keys and
  # the database password) in an environment file, the rest in options.
  replicaNode = {
    imports = [ module ];
    services.ha-registry = {
      enable = true;
      openFirewall = true;
      databaseUrl = "postgres://registry@db:5432/registry?sslmode=disable";
      s3 = {
        endpoint = "http://s3:${toString s3.port}";
        inherit (s3) bucket;
        pathStyle = true;
      };
      environmentFile = "/etc/ha-registry/secrets.env";
    };
    environment.etc."ha-registry/secrets.env" = {
      mode = "0400";
      text = ''
        AWS_ACCESS_KEY_ID=${s3.accessKey}
        AWS_SECRET_ACCESS_KEY=${s3.secretKey}
        PGPASSWORD=${dbPassword}
      '';
    };
    environment.systemPackages = [ pkgs.curl ];
  };

  lbNode = {
    networking.firewall.allowedTCPPorts = [ 5000 ];
    services.haproxy = {
      enable = true;
      config = haproxyConfig;
    };
    systemd.services.haproxy.environment = {
      REGISTRY_LB_LISTEN = ":5000";
      REGISTRY_REPLICA_1 = "replica1:5000";
      REGISTRY_REPLICA_2 = "replica2:5000";
    };
    environment.systemPackages = [ pkgs.curl ];
  };

  clientNode = {
    environment.systemPackages = [
      oci
      pkgs.curl
      pkgs.go-containerregistry
      pkgs.jq
      pkgs.oras
    ];
  };

  # The S3 and PostgreSQL machines every test has, and the Python that
  # waits until they answer.
  backends = {
    s3 = s3Node;
    db = dbNode;
  };
  waitForBackends = ''
    s3.wait_for_unit("versitygw.service")
    s3.wait_for_open_port(${toString s3.port})
    db.wait_for_unit("postgresql.service")
    db.wait_for_open_port(5432)
  '';
}
