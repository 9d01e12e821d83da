# SPDX-FileCopyrightText: 2026 The ha-registry authors
# SPDX-License-Identifier: EUPL-1.2
#
# Disaster recovery: push a corpus, lose the database, run
# `registry migrate && registry rebuild-db` (through the module's
# `ha-registry` command, with the service's configuration), and find
# everything again: the same catalog, tags, digests and referrers, and
# every image byte-identical.
{ common }:

{
  name = "ha-registry-disaster-recovery";

  nodes = common.backends // {
    registry = common.replicaNode;
    client = common.clientNode;
  };

  testScript = ''
    start_all()
    ${common.waitForBackends}
    registry.wait_for_unit("ha-registry.service")
    client.wait_until_succeeds("curl -fsS http://registry:5000/readyz")

    with subtest("push a corpus"):
        client.succeed("oci corpus registry:5000 /tmp/ledger")
        client.succeed("oci verify /tmp/ledger")
        client.succeed("oci dump registry:5000 > /tmp/before")
        print(client.succeed("cat /tmp/before"))

    with subtest("lose the database"):
        registry.systemctl("stop ha-registry.service")
        db.succeed(
            "runuser -u postgres -- psql -v ON_ERROR_STOP=1"
            " -c 'DROP DATABASE registry WITH (FORCE)' -c 'CREATE DATABASE registry OWNER registry'"
        )
        # The new database is empty: a replica refuses it until migrated.
        registry.fail("ha-registry rebuild-db --verify")

    with subtest("registry migrate && registry rebuild-db"):
        print(registry.succeed("ha-registry migrate && ha-registry rebuild-db"))
        registry.succeed("ha-registry rebuild-db --verify")
        registry.systemctl("start ha-registry.service")
        registry.wait_for_unit("ha-registry.service")

    with subtest("everything is back"):
        client.wait_until_succeeds("curl -fsS http://registry:5000/readyz")
        client.succeed("oci dump registry:5000 > /tmp/after")
        client.succeed("diff -u /tmp/before /tmp/after")
        client.succeed("oci verify /tmp/ledger")
  '';
}
