# SPDX-FileCopyrightText: 2026 The ha-registry authors
# SPDX-License-Identifier: EUPL-1.2
#
# GC on both replicas at once: each replica has the module's gc timer;
# both gc services are started together, and exactly one pass runs while
# the other skips because the first holds the cluster-wide lock.
#
# To make "at once" deterministic, the test holds locks on the index's
# tables (hold-tables.sql): the pass that won the gc lock waits on its
# first query, so the other certainly tries the lock while it is held.
{ common }:

let
  gcReplica = {
    imports = [ common.replicaNode ];
    services.ha-registry.gc = {
      enable = true;
      extraArgs = [
        "--grace"
        "0s"
        "--delete-untagged"
      ];
    };
    # Only the two gc services run passes here: no periodic GC in serve.
    services.ha-registry.environment.REGISTRY_GC_INTERVAL = "0";
  };
in
{
  name = "ha-registry-gc";

  nodes = common.backends // {
    replica1 = gcReplica;
    replica2 = gcReplica;
    client = common.clientNode;
  };

  testScript = ''
    import time


    def gc_unit(machine):
        """The gc service's state, as systemctl show reports it."""
        out = machine.succeed(
            "systemctl show -p ActiveState -p Result -p ExecMainStatus"
            " -p ExecMainExitTimestampMonotonic ha-registry-gc.service"
        )
        return dict(line.split("=", 1) for line in out.strip().splitlines())


    def finished(unit):
        return unit["ExecMainExitTimestampMonotonic"] not in ("", "0")


    def psql(sql):
        return db.succeed(f"runuser -u postgres -- psql -d registry -tAc \"{sql}\"").strip()


    start_all()
    ${common.waitForBackends}
    replica1.wait_for_unit("ha-registry.service")
    replica2.wait_for_unit("ha-registry.service")
    client.wait_for_unit("multi-user.target")

    with subtest("each replica has the gc timer, running registry gc with the extra arguments"):
        for r in (replica1, replica2):
            r.succeed("systemctl list-timers --all | grep -q ha-registry-gc.timer")
            r.succeed(
                "systemctl show -p ExecStart ha-registry-gc.service"
                " | grep -q '/bin/registry gc --grace 0s --delete-untagged ;'"
            )

    with subtest("content: an image kept, one whose manifest is deleted"):
        client.succeed("oci push replica1:5000/gc/kept:v1 /tmp/kept")
        client.succeed("oci push replica2:5000/gc/gone:v1 /tmp/gone")
        client.succeed("crane delete --insecure $(crane digest --insecure --full-ref replica1:5000/gc/gone:v1)")

    with subtest("gc on both replicas at once: one runs, one skips"):
        db.succeed(
            "systemd-run --unit=hold-tables --property=User=postgres --setenv=PGAPPNAME=hold-tables"
            " /run/current-system/sw/bin/psql -d registry -f ${./hold-tables.sql}"
        )
        db.wait_until_succeeds(
            "runuser -u postgres -- psql -d registry -tAc"
            " \"SELECT 1 FROM pg_stat_activity WHERE application_name = 'hold-tables' AND query LIKE 'SELECT pg_sleep%'\""
            " | grep -qx 1"
        )
        replica1.succeed("systemctl start --no-block ha-registry-gc.service")
        replica2.succeed("systemctl start --no-block ha-registry-gc.service")

        deadline = time.monotonic() + 300
        while True:
            units = {r: gc_unit(r) for r in (replica1, replica2)}
            done = [r for r, u in units.items() if finished(u)]
            held = [r for r, u in units.items() if u["ActiveState"] == "activating" and not finished(u)]
            if len(done) == 1 and len(held) == 1:
                break
            assert len(done) < 2, f"both gc passes finished while the index was locked: {units}"
            assert time.monotonic() < deadline, f"want one gc pass finished and one running; got {units}"
            time.sleep(1)
        skipper, runner = done[0], held[0]

        # The skipper succeeded and said why it did nothing.
        assert units[skipper]["Result"] == "success", f"the skipping gc failed: {units[skipper]}"
        skipper.succeed(
            "journalctl -u ha-registry-gc.service -o cat"
            " | grep -Eqi 'skipp|another garbage collection pass is running'"
        )
        # The runner holds the cluster-wide gc lock, waiting on the index.
        assert int(psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")) >= 1

        psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hold-tables'")
        runner.wait_until_succeeds(
            "test $(systemctl show -p ExecMainExitTimestampMonotonic --value ha-registry-gc.service) != 0"
        )
        unit = gc_unit(runner)
        assert unit["Result"] == "success" and unit["ExecMainStatus"] == "0", f"the gc pass failed: {unit}"
        runner.fail(
            "journalctl -u ha-registry-gc.service -o cat"
            " | grep -Eqi 'another garbage collection pass is running'"
        )

    with subtest("what is tagged is still there"):
        client.succeed("oci verify /tmp/kept")
  '';
}
