# SPDX-FileCopyrightText: 2026 The ha-registry authors
# SPDX-License-Identifier: EUPL-1.2
#
# High availability: an S3 server, PostgreSQL, two replicas configured by
# the NixOS module, haproxy with deploy/haproxy/haproxy.cfg, and a client.
{ common }:

{
  name = "ha-registry-ha";

  nodes = common.backends // {
    replica1 = common.replicaNode;
    replica2 = common.replicaNode;
    lb = common.lbNode;
    client = common.clientNode;
  };

  testScript = ''
    def wait_haproxy(server, status):
        """Wait until haproxy's health checks see the replica as status."""
        lb.wait_until_succeeds(
            "curl -fsS 'http://127.0.0.1:8404/stats;csv'"
            f" | awk -F, '$1 == \"replicas\" && $2 == \"{server}\" {{ print $18 }}'"
            f" | grep -qx {status}"
        )


    def ledger_size(path):
        return int(client.succeed(f"wc -l < {path}").strip())


    s3.start()
    db.start()
    ${common.waitForBackends}

    with subtest("two replicas started together migrate the database once"):
        replica1.start()
        replica2.start()
        # Type=notify: active only once the replica has sent READY=1.
        replica1.wait_for_unit("ha-registry.service")
        replica2.wait_for_unit("ha-registry.service")
        migrated = sorted(
            int(r.succeed("journalctl -u ha-registry.service -o cat | grep -c '\"database migrated\"' || true").strip())
            for r in (replica1, replica2)
        )
        assert migrated == [0, 1], f"the replicas logged 'database migrated' {migrated} times; want once in all"
        for r in (replica1, replica2):
            r.succeed("curl -fsS http://localhost:5000/readyz")

    lb.start()
    client.start()
    lb.wait_for_unit("haproxy.service")
    wait_haproxy("r1", "UP")
    wait_haproxy("r2", "UP")
    client.wait_for_unit("multi-user.target")

    with subtest("push through the balancer, stop a replica, pull"):
        for i in range(1, 6):
            client.succeed(f"oci push lb:5000/ha/app:v{i} /tmp/ledger")
        replica1.systemctl("stop ha-registry.service")
        # It drained and exited 0.
        replica1.succeed("systemctl show -p Result --value ha-registry.service | grep -qx success")
        replica1.succeed("journalctl -u ha-registry.service -o cat | grep -q '\"draining\"'")
        wait_haproxy("r1", "DOWN")
        client.succeed("oci verify /tmp/ledger")
        client.succeed("oci push lb:5000/ha/app:one-replica /tmp/ledger")
        replica1.systemctl("start ha-registry.service")
        replica1.wait_for_unit("ha-registry.service")
        wait_haproxy("r1", "UP")
        client.succeed("oci verify /tmp/ledger")

    with subtest("restart each replica in turn during a push loop: zero failures"):
        client.succeed(
            "systemd-run --unit=push-loop --setenv=HOME=/root ${common.oci}/bin/oci loop"
            " lb:5000/ha/loop /tmp/loop-ledger /tmp/stop-loop /tmp/loop-summary 5000 1800"
        )
        client.wait_until_succeeds("test $(wc -l < /tmp/loop-ledger) -ge 3")
        for replica, server in ((replica1, "r1"), (replica2, "r2")):
            before = ledger_size("/tmp/loop-ledger")
            # Stop (SIGTERM, drain, exit) and start again; the job ends
            # when the new process has sent READY=1.
            replica.systemctl("restart ha-registry.service")
            replica.wait_for_unit("ha-registry.service")
            wait_haproxy(server, "UP")
            # Pushes went on through the restart, and go on after it.
            client.wait_until_succeeds(f"test $(wc -l < /tmp/loop-ledger) -ge {before + 3}")
        client.succeed("touch /tmp/stop-loop")
        client.wait_for_file("/tmp/loop-summary")
        print(client.succeed("cat /tmp/loop-summary"))
        client.succeed("grep -qx 'failed 0' /tmp/loop-summary")
        client.succeed("oci verify /tmp/loop-ledger")
        client.succeed("oci verify /tmp/ledger")
  '';
}
