# SPDX-FileCopyrightText: 2026 The ha-registry authors
# SPDX-License-Identifier: EUPL-1.2
#
# services.ha-registry: one replica of ha-registry (`registry serve`) on a
# NixOS host, its policy file (quotas, retention, access rules, webhooks),
# its authentication secrets, and timers for its maintenance jobs
# (`registry gc`, `registry retention apply`). Run it on two or more hosts
# with the same database and bucket behind a load balancer; every replica
# is alike.
#
# The flake's nixosModules.default imports this file and sets `package`
# to the flake's build.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    mkEnableOption
    mkIf
    mkOption
    types
    ;

  cfg = config.services.ha-registry;

  listen =
    if lib.hasInfix ":" cfg.listenAddress then
      "[${cfg.listenAddress}]:${toString cfg.port}"
    else
      "${cfg.listenAddress}:${toString cfg.port}";

  privilegedPort = cfg.port < 1024;

  policyFormat = pkgs.formats.yaml { };
  hasPolicy = cfg.policy != { };
  policyYaml = policyFormat.generate "ha-registry-policy.yaml" cfg.policy;

  # The rendered policy is read through a fixed path in /etc, not its store
  # path: REGISTRY_POLICY_FILE then stays the same when only the policy
  # changes, so the unit is reloaded (SIGHUP, below) rather than restarted.
  policyFile =
    if cfg.policyFile != null then
      cfg.policyFile
    else if hasPolicy then
      "/etc/ha-registry/policy.yaml"
    else
      null;

  # Every subcommand reads its flags from these variables, and ignores
  # those it has no flag for, so serve and the jobs share one environment.
  environment = lib.filterAttrs (_: value: value != null) {
    REGISTRY_LISTEN = listen;
    # With two database roles the oneshot ha-registry-migrate migrates, as
    # the owner; the serving role could not.
    REGISTRY_MIGRATE = lib.boolToString (cfg.migrate && !splitRoles);
    REGISTRY_DRAIN_DELAY = "${toString cfg.drainDelay}s";
    REGISTRY_SHUTDOWN_TIMEOUT = "${toString cfg.shutdownTimeout}s";
    REGISTRY_LOG_LEVEL = cfg.logLevel;
    REGISTRY_LOG_FORMAT = "json";
    REGISTRY_DATABASE_URL = cfg.databaseUrl;
    REGISTRY_S3_ENDPOINT = cfg.s3.endpoint;
    REGISTRY_S3_BUCKET = cfg.s3.bucket;
    REGISTRY_S3_REGION = cfg.s3.region;
    REGISTRY_S3_PATH_STYLE = lib.boolToString cfg.s3.pathStyle;
    REGISTRY_S3_PREFIX = cfg.s3.prefix;
    # serve, `registry quota` and `registry retention` read the same file.
    REGISTRY_POLICY_FILE = policyFile;
    REGISTRY_RETENTION_INTERVAL = cfg.retentionInterval;
    # The limits on slow and greedy clients; null keeps the binary's default.
    REGISTRY_BODY_MIN_RATE = lib.mapNullable toString cfg.limits.bodyMinRate;
    REGISTRY_BODY_RATE_WINDOW = lib.mapNullable (s: "${toString s}s") cfg.limits.bodyRateWindow;
    REGISTRY_UPLOAD_CONN_WAIT = lib.mapNullable (s: "${toString s}s") cfg.limits.uploadConnWait;
    REGISTRY_UPLOAD_CONNS_PER_CLIENT = lib.mapNullable toString cfg.limits.uploadConnsPerClient;
    REGISTRY_MANIFEST_MEMORY = lib.mapNullable toString cfg.limits.manifestMemory;
    REGISTRY_TRUSTED_PROXIES =
      if cfg.trustedProxies == [ ] then null else lib.concatStringsSep "," cfg.trustedProxies;
    REGISTRY_MAX_UPLOAD_SESSIONS_PER_REPOSITORY = lib.mapNullable toString cfg.uploads.maxSessionsPerRepository;
    REGISTRY_MAX_UPLOAD_SESSIONS_PER_CLIENT = lib.mapNullable toString cfg.uploads.maxSessionsPerClient;
    REGISTRY_MAX_STAGED_BYTES = lib.mapNullable toString cfg.uploads.maxStagedBytes;
    REGISTRY_UPLOAD_TTL = cfg.uploads.ttl;
  } // cfg.environment;

  # The registry keeps no state on the host: it needs the network, its
  # binary and its configuration, and nothing else.
  hardening = {
    DynamicUser = true;
    UMask = "0077";
    NoNewPrivileges = true;
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    DevicePolicy = "closed";
    PrivateUsers = !privilegedPort;
    ProtectHostname = true;
    ProtectClock = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    # Not ProcSubset=pid: the Prometheus process metrics read /proc/stat.
    ProtectProc = "invisible";
    # AF_UNIX: the systemd notification socket, PostgreSQL's local socket.
    RestrictAddressFamilies = [
      "AF_UNIX"
      "AF_INET"
      "AF_INET6"
    ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    RemoveIPC = true;
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    SystemCallArchitectures = "native";
    SystemCallFilter = [
      "@system-service"
      "~@privileged"
    ];
    # A refused call fails (Go's start-up raising RLIMIT_NOFILE, say)
    # instead of killing the process.
    SystemCallErrorNumber = "EPERM";
    CapabilityBoundingSet = lib.optionalString privilegedPort "CAP_NET_BIND_SERVICE";
    AmbientCapabilities = lib.optionalString privilegedPort "CAP_NET_BIND_SERVICE";
  };

  # The authentication secrets reach serve as systemd credentials
  # (LoadCredential=): systemd reads each file as root when serve starts and
  # gives the unit a private copy that only its dynamic user can read. So
  # the files can stay root-owned and 0600, which the dynamic user could
  # not open itself (it has no fixed uid to own them), and out of the
  # store. Only serve has the authentication flags, so only serve loads
  # them: a job or `ha-registry` never holds the token key.
  credentials = lib.filterAttrs (_: file: file != null) {
    token-key = cfg.auth.tokenKeyFile;
    htpasswd = cfg.auth.htpasswdFile;
    robots = cfg.auth.robotsFile;
  };

  # Where serve finds a credential: %d is the unit's credentials directory
  # (/run/credentials/ha-registry.service). systemd expands specifiers in
  # Environment= and has had %d since 248, older than any NixOS release
  # with this module, so the path is systemd's own rather than spelled out
  # here; $CREDENTIALS_DIRECTORY would not do, as Environment= expands no
  # variables. NixOS writes environment values into the unit unescaped,
  # so the % reaches systemd.
  credentialPath = id: if credentials ? ${id} then "%d/${id}" else null;

  # systemd 260 added RefreshOnReload=credentials: a reload copies the
  # credentials afresh before ExecReload, so serve's SIGHUP reads the new
  # htpasswd and robots files. Older systemd keep the copies made at start
  # (and would only warn about an unknown setting), so there a change to
  # them takes a restart.
  refreshCredentials =
    (cfg.auth.htpasswdFile != null || cfg.auth.robotsFile != null)
    && lib.versionAtLeast config.systemd.package.version "260";

  authEnvironment = lib.filterAttrs (_: value: value != null) {
    REGISTRY_TOKEN_KEY_FILE = credentialPath "token-key";
    REGISTRY_HTPASSWD_FILE = credentialPath "htpasswd";
    REGISTRY_ROBOTS_FILE = credentialPath "robots";
    # A string slice from the environment is split at commas.
    REGISTRY_TRUST_ISSUERS =
      if cfg.auth.trustIssuers == { } then
        null
      else
        lib.concatStringsSep "," (lib.mapAttrsToList (issuer: file: "${issuer}=${file}") cfg.auth.trustIssuers);
    REGISTRY_AUTH_SERVICE = cfg.auth.service;
    REGISTRY_AUTH_REALM = cfg.auth.realm;
    REGISTRY_TOKEN_ISSUER = cfg.auth.tokenIssuer;
    REGISTRY_TOKEN_LIFETIME = cfg.auth.tokenLifetime;
  };

  # serve's environment: the shared one, and the authentication settings,
  # which the other subcommands have no flags for. `environment` still
  # overrides them.
  serveEnvironment = authEnvironment // environment;

  # A secret given as "${./key.pem}" or a package's file is in the
  # world-readable store; a Nix path literal is refused by its type.
  inStore = file: file != null && lib.hasPrefix "${builtins.storeDir}/" file;

  environmentFiles = lib.optionals (cfg.environmentFile != null) [ cfg.environmentFile ];

  # Two database roles (docs/auth.md, "Database roles"): the schema's owner
  # migrates, in the oneshot ha-registry-migrate before serve, and grants
  # `database.servingRole`, which serve, the jobs and `ha-registry` connect
  # as. The owner's URL and secrets reach only that unit.
  splitRoles = cfg.database.servingRole != null;
  migrateEnvironment =
    environment
    // lib.filterAttrs (_: value: value != null) {
      REGISTRY_DATABASE_URL = cfg.database.ownerUrl;
      REGISTRY_GRANT_TO = cfg.database.servingRole;
    };
  migrateEnvironmentFiles =
    environmentFiles ++ lib.optionals (cfg.database.ownerEnvironmentFile != null) [ cfg.database.ownerEnvironmentFile ];

  # Units to start after: the network, and PostgreSQL when it runs here.
  dependencies = [ "network-online.target" ] ++ lib.optional config.services.postgresql.enable "postgresql.service";

  # `ha-registry ARGS` runs `registry ARGS` as the service runs, with its
  # environment and secrets, in a transient unit: for rebuild-db, migrate,
  # a gc --dry-run, by hand.
  adminCommand = pkgs.writeShellScriptBin "ha-registry" ''
    exec ${config.systemd.package}/bin/systemd-run --quiet --collect --wait --pipe \
      --service-type=exec --property=DynamicUser=yes \
      ${lib.concatMapStringsSep " " (f: "--property=EnvironmentFile=${lib.escapeShellArg f}") environmentFiles} \
      ${lib.concatStringsSep " " (lib.mapAttrsToList (name: value: "--setenv=${lib.escapeShellArg "${name}=${value}"}") environment)} \
      -- ${lib.getExe' cfg.package "registry"} "$@"
  '';

  jobModule = {
    options = {
      args = mkOption {
        type = types.listOf types.str;
        example = [
          "retention"
          "apply"
        ];
        description = "The `registry` subcommand to run and its arguments.";
      };
      startAt = mkOption {
        type = types.nullOr (types.either types.str (types.listOf types.str));
        default = "daily";
        example = "*-*-* 03:00:00";
        description = ''
          When to run the job, as systemd calendar events (systemd.time(7)).
          `null` installs the service without a timer, to be started by hand.
        '';
      };
      randomizedDelaySec = mkOption {
        type = types.str;
        default = "30min";
        description = "Spread of the job's start after each calendar event (RandomizedDelaySec).";
      };
    };
  };
in
{
  options.services.ha-registry = {
    enable = mkEnableOption "ha-registry, a highly available OCI registry on S3 and PostgreSQL";

    package = mkOption {
      type = types.package;
      description = "The ha-registry package (its `registry` binary). The flake's module sets it to the flake's build.";
    };

    listenAddress = mkOption {
      type = types.str;
      default = "";
      example = "10.0.0.1";
      description = "Address to serve on; empty for every address.";
    };

    port = mkOption {
      type = types.port;
      default = 5000;
      description = "Port to serve the registry API, /healthz, /readyz and /metrics on.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open `port` in the firewall, for the load balancer in front of the replicas.";
    };

    databaseUrl = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "postgres://registry@db.internal:5432/registry?sslmode=verify-full";
      description = ''
        PostgreSQL connection URL (REGISTRY_DATABASE_URL). It ends up in the
        Nix store: leave the password out and put `PGPASSWORD=...` in
        `environmentFile`, or set this to `null` and put the whole
        `REGISTRY_DATABASE_URL=...` there.
      '';
    };

    s3 = {
      endpoint = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://s3.internal:9000";
        description = "S3 endpoint URL; `null` for AWS.";
      };
      bucket = mkOption {
        type = types.str;
        example = "registry";
        description = "The bucket, which holds the registry's content (the source of truth).";
      };
      region = mkOption {
        type = types.str;
        default = "us-east-1";
        description = "The bucket's region.";
      };
      pathStyle = mkOption {
        type = types.bool;
        default = false;
        description = "Path-style addressing, which most S3-compatible servers want.";
      };
      prefix = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "registry/";
        description = "Key prefix under which the registry's layout lives in the bucket.";
      };
    };

    environmentFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/secrets/ha-registry.env";
      description = ''
        File of `NAME=value` lines (systemd's EnvironmentFile=) for secrets,
        read by systemd as root: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
        `PGPASSWORD` or a whole `REGISTRY_DATABASE_URL`. Its values override
        the other options. Give it as a string, so that it stays out of the
        Nix store.
      '';
    };

    database = {
      servingRole = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "registry_serving";
        description = ''
          The PostgreSQL role `databaseUrl` connects as, when it is not the
          role that owns the schema. Then the oneshot unit
          ha-registry-migrate runs `registry migrate --grant-to
          <servingRole>` as the owner (`ownerUrl`) before serve starts, on
          every start of a new release, and serve runs without `--migrate`.
          The serving role may then append to the audit log but not change,
          delete or truncate it, nor disable its trigger (docs/auth.md).
          Create both roles first; `null` serves as one role that owns all.
        '';
      };
      ownerUrl = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "postgres://registry_owner@db.internal:5432/registry?sslmode=verify-full";
        description = ''
          PostgreSQL URL as the role that owns the schema, for
          ha-registry-migrate only. Leave the password out and put
          `PGPASSWORD=...` in `ownerEnvironmentFile`, or set this to `null`
          and put the whole `REGISTRY_DATABASE_URL=...` there.
        '';
      };
      ownerEnvironmentFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        example = "/run/secrets/ha-registry-owner.env";
        description = ''
          Like `environmentFile`, read after it, for ha-registry-migrate
          only: the owner's `PGPASSWORD` or `REGISTRY_DATABASE_URL`, which
          serve and the jobs never see. Give it as a string.
        '';
      };
    };

    migrate = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Apply the binary's database migrations before serving (`serve
        --migrate`). Safe with several replicas starting at once: the first
        takes a cluster-wide advisory lock and migrates, the others wait
        for it and find nothing left to do.
      '';
    };

    drainDelay = mkOption {
      type = types.ints.unsigned;
      default = 5;
      description = ''
        Seconds a replica keeps serving after SIGTERM while /readyz fails, so
        that the load balancer takes it out first (REGISTRY_DRAIN_DELAY).
        Longer than the balancer takes to notice a failing /readyz; the
        example haproxy configuration takes 1.25s.
      '';
    };

    shutdownTimeout = mkOption {
      type = types.ints.unsigned;
      default = 30;
      description = "Seconds in-flight requests may then take to finish (REGISTRY_SHUTDOWN_TIMEOUT).";
    };

    # README.md, "Limits". null keeps the binary's default.
    limits = {
      bodyMinRate = mkOption {
        type = types.nullOr types.ints.unsigned;
        default = null;
        example = 4096;
        description = ''
          Bytes a second a request body must average over
          `limits.bodyRateWindow`, or the request fails and frees its upload
          session and connection; 0 turns the minimum off
          (REGISTRY_BODY_MIN_RATE; default 1024).
        '';
      };
      bodyRateWindow = mkOption {
        type = types.nullOr types.ints.positive;
        default = null;
        description = "Seconds over which `limits.bodyMinRate` is averaged (REGISTRY_BODY_RATE_WINDOW; default 30).";
      };
      uploadConnWait = mkOption {
        type = types.nullOr types.ints.unsigned;
        default = null;
        description = ''
          Seconds an upload waits for an upload connection before it is
          answered 429 with Retry-After; 0 waits without bound
          (REGISTRY_UPLOAD_CONN_WAIT; default 5).
        '';
      };
      uploadConnsPerClient = mkOption {
        type = types.nullOr types.ints.unsigned;
        default = null;
        description = ''
          Uploads one user, robot or anonymous address may have in flight
          on a replica; more are answered 429 (REGISTRY_UPLOAD_CONNS_PER_CLIENT;
          default half of REGISTRY_UPLOAD_CONNS). Behind a load balancer,
          anonymous clients are told apart only when the balancer is a
          trusted proxy.
        '';
      };
      manifestMemory = mkOption {
        type = types.nullOr types.ints.unsigned;
        default = null;
        description = ''
          MiB that manifest bodies being pushed may hold on a replica, at
          least 4; more are answered 429 (REGISTRY_MANIFEST_MEMORY; default a
          quarter of the memory limit, from 4 to 256).
        '';
      };
    };

    trustedProxies = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "10.0.0.10" "10.0.1.0/28" ];
      description = ''
        Addresses or CIDRs of the load balancers in front, as the replica
        sees them connect (REGISTRY_TRUSTED_PROXIES). From them, the
        client's address (for the login throttle, the audit log and the
        request log) is read from X-Forwarded-For, right to left; from
        anyone else the header is ignored. Behind the example haproxy
        configuration, list haproxy's address(es): otherwise every client
        has haproxy's address, and ten failed logins from anyone throttle
        everyone's. List only proxies, never client networks.
      '';
    };

    logLevel = mkOption {
      type = types.enum [
        "trace"
        "debug"
        "info"
        "warn"
        "error"
      ];
      default = "info";
      description = "Log level; logs go to the journal as JSON lines.";
    };

    environment = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        REGISTRY_UPLOAD_CONNS = "40";
      };
      description = "More environment variables for serve and the jobs: any setting of README.md's configuration table.";
    };

    policy = mkOption {
      type = policyFormat.type;
      default = { };
      example = {
        quotas = [
          {
            match = "team-a/";
            maxBytes = "500GiB";
            maxTags = 10000;
          }
          {
            match = "ci/scratch";
            maxTags = 1000;
          }
        ];
        retention = [
          {
            repositories = "ci/**";
            keepTags = [
              { pattern = "^(main|release-.*)$"; }
              { mostRecentlyPushed = 20; }
              { pulledWithin = "720h"; }
            ];
            deleteUntagged = true;
            untaggedGrace = "48h";
          }
          {
            repositories = "team-a/**";
            keepTags = [ { pushedWithin = "2160h"; } ];
          }
        ];
        groups = {
          team-a = [
            "alice"
            "ci"
          ];
        };
        access = [
          {
            repositories = "team-a/**";
            pull = [ "group:team-a" ];
            push = [ "group:team-a" ];
            delete = [ "alice" ];
          }
          {
            repositories = "public/**";
            pull = [ "anonymous" ];
            push = [ "alice" ];
          }
        ];
        webhooks = [
          {
            url = "https://hooks.internal/registry";
            events = [
              "push"
              "delete"
            ];
          }
        ];
      };
      description = ''
        The policy file (REGISTRY_POLICY_FILE), as Nix: `quotas` (each a
        `match`, a namespace ending in `/` or one repository, with
        `maxBytes` and/or `maxTags`), `retention` (the first rule whose
        `repositories` glob matches applies: `keepTags` entries of
        `pattern`, `mostRecentlyPushed`, `pulledWithin` or `pushedWithin`,
        and `deleteUntagged` after `untaggedGrace`), `groups` (a name to a
        list of users and robots), `access` (with `auth` on, the first rule
        whose `repositories` glob matches says who may `pull`, `push` and
        `delete`: user or robot names, `group:NAME`, `authenticated`, or
        `anonymous`, for pulls only; a repository no rule matches is closed
        to everyone) and `webhooks` (a `url`, the `events` `push` and/or
        `delete`, optionally a `repositories` glob). It is linked at
        /etc/ha-registry/policy.yaml, in the world-readable store: no
        secrets (a webhook URL with credentials is refused). A change
        reloads serve (SIGHUP) instead of restarting it. A file with errors
        is refused whole and the previous policy stays in force: look for
        "policy file refused" in the journal. `{ }` sets no policy file.
      '';
    };

    policyFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/etc/registry/policy.yaml";
      description = ''
        A policy file kept outside this configuration, instead of `policy`.
        Give it as a string: it stays out of the Nix store and its path
        never changes, so after editing it `systemctl reload ha-registry`
        makes serve re-read it. (A Nix path is copied into the store, and a
        change to it restarts serve.) The service's dynamic user must be
        able to read it: world-readable, and not under /home (ProtectHome).
      '';
    };

    retentionInterval = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "6h";
      description = ''
        How often serve applies the policy's retention rules
        (REGISTRY_RETENTION_INTERVAL), as a Go duration; `null` leaves it
        unset, which is never. Set it on every replica: one at a time runs
        retention, the others skip while it holds the cluster-wide lock.
        A timer does the same: `jobs.retention.args = [ "retention" "apply" ]`.
      '';
    };

    uploads = {
      maxSessionsPerRepository = mkOption {
        type = types.nullOr types.ints.unsigned;
        default = null;
        example = 200;
        description = ''
          Upload sessions open at once in one repository, counted across
          replicas (REGISTRY_MAX_UPLOAD_SESSIONS_PER_REPOSITORY); beyond it
          a new one gets 429. `null` keeps the default, 1000; 0 is no cap.
        '';
      };
      maxSessionsPerClient = mkOption {
        type = types.nullOr types.ints.unsigned;
        default = null;
        example = 20;
        description = ''
          Upload sessions open at once by one user or robot, or one address
          for anonymous callers (REGISTRY_MAX_UPLOAD_SESSIONS_PER_CLIENT);
          beyond it a new one gets 429. `null` keeps the default, 100; 0 is
          no cap.
        '';
      };
      maxStagedBytes = mkOption {
        type = types.nullOr types.ints.unsigned;
        default = null;
        example = 268435456;
        description = ''
          Bytes below one S3 part that all upload sessions together keep in
          PostgreSQL (REGISTRY_MAX_STAGED_BYTES); a chunk that would pass it
          gets 429. `null` keeps the default, 1 GiB; 0 is no ceiling.
        '';
      };
      ttl = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "6h";
        description = ''
          Idle time after which serve ends an upload session, with its
          staged bytes and S3 multipart upload, whether or not garbage
          collection runs (REGISTRY_UPLOAD_TTL), as a Go duration. `null`
          keeps the default, 24h; "0s" never expires them.
        '';
      };
    };

    auth = {
      tokenKeyFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/secrets/ha-registry-token.pem";
        description = ''
          PEM private key (Ed25519, ECDSA P-256/P-384 or RSA) of the
          built-in token endpoint, the same file on every replica
          (REGISTRY_TOKEN_KEY_FILE). Setting it turns authentication on:
          then `policy`'s `access` rules decide who may do what, and a
          repository no rule matches is closed. A secret: give it as a
          string naming a file outside the Nix store, never a Nix path
          literal, which would copy the key into the world-readable store
          (the type refuses a path, and an assertion a string in the
          store). The service's dynamic user could not read a root-owned
          0600 file, so systemd reads it as root when serve starts and
          hands serve a private copy (LoadCredential=); keep it root-owned
          and 0600. Read at start only: a new key takes
          `systemctl restart ha-registry`, on every replica.
        '';
      };

      htpasswdFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/secrets/ha-registry-users";
        description = ''
          The users (REGISTRY_HTPASSWD_FILE): an htpasswd file of bcrypt
          hashes (`htpasswd -B`), who log in at the built-in token
          endpoint; needs `tokenKeyFile`. A secret, handled like
          `tokenKeyFile`: a string outside the store, root-owned and 0600,
          loaded with LoadCredential=. After editing it, `systemctl reload
          ha-registry` (the SIGHUP that re-reads `policyFile`) makes serve
          re-read it with systemd 260 or later, which copies the file
          afresh on a reload (this module sets RefreshOnReload=credentials).
          Older systemd keep the copy made at start, so there a change,
          even a removed user, takes effect only at `systemctl restart
          ha-registry`. Do it on every replica.
        '';
      };

      robotsFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/secrets/ha-registry-robots";
        description = ''
          The robots (REGISTRY_ROBOTS_FILE): lines `NAME:sha256:HEX`, HEX
          the SHA-256 of the robot's token; needs `tokenKeyFile`. Handled
          and re-read like `htpasswdFile`: `systemctl reload ha-registry`
          with systemd 260 or later, `systemctl restart ha-registry`
          before.
        '';
      };

      trustIssuers = mkOption {
        type = types.attrsOf types.path;
        default = { };
        example = {
          "https://auth.internal" = "/etc/ha-registry/auth-internal.pem";
        };
        description = ''
          External token services whose tokens serve also accepts: the
          `iss` of their tokens to a PEM file of their public keys or
          certificates (REGISTRY_TRUST_ISSUERS). Setting any turns
          authentication on. Public keys are no secret, so a Nix path is
          fine here; a file outside the store must be readable by the
          service's dynamic user (world-readable, not under /home). Read
          at start only: new keys take `systemctl restart ha-registry`.
        '';
      };

      service = mkOption {
        type = types.str;
        default = "ha-registry";
        description = "The registry's service name, the audience tokens must carry (REGISTRY_AUTH_SERVICE); the same on every replica and in the `trustIssuers`' tokens.";
      };

      realm = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://registry.example/token";
        description = ''
          The token endpoint URL given to clients (REGISTRY_AUTH_REALM).
          Set it. `null` derives it, with a warning at start-up, never
          from the client's Host: from a trusted proxy's X-Forwarded-Host
          and -Proto (see `trustedProxies`), else from the address the
          connection arrived on, which behind a balancer is the replica's.
        '';
      };

      tokenIssuer = mkOption {
        type = types.str;
        default = "ha-registry";
        description = "The `iss` of the built-in endpoint's tokens (REGISTRY_TOKEN_ISSUER); the same on every replica.";
      };

      tokenLifetime = mkOption {
        type = types.str;
        default = "5m";
        example = "15m";
        description = "How long a token of the built-in endpoint is valid (REGISTRY_TOKEN_LIFETIME), as a Go duration.";
      };
    };

    gc = {
      enable = mkEnableOption "a timer that runs `registry gc` (one runner at a time across the cluster: on the other replicas the pass skips)";
      startAt = mkOption {
        type = types.nullOr (types.either types.str (types.listOf types.str));
        default = "daily";
        description = "When to run `registry gc` (systemd.time(7) calendar events); `null` for no timer.";
      };
      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [
          "--grace"
          "48h"
          "--delete-untagged"
        ];
        description = "Arguments after `registry gc`.";
      };
    };

    jobs = mkOption {
      type = types.attrsOf (types.submodule jobModule);
      default = { };
      example = lib.literalExpression ''
        {
          retention = {
            args = [ "retention" "apply" ];
            startAt = "hourly";
          };
        }
      '';
      description = ''
        Maintenance jobs: each runs `registry ARGS` as the oneshot service
        ha-registry-NAME, on a timer, with the replica's environment and
        hardening. `gc.enable` adds the job `gc`.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = !splitRoles || cfg.database.ownerUrl != null || cfg.database.ownerEnvironmentFile != null;
        message = "services.ha-registry: `database.servingRole` needs the owner's URL: `database.ownerUrl` or a REGISTRY_DATABASE_URL in `database.ownerEnvironmentFile`.";
      }
      {
        assertion = !(hasPolicy && cfg.policyFile != null);
        message = "services.ha-registry: set `policy` or `policyFile`, not both.";
      }
      {
        # serve refuses to start otherwise: users and robots log in at the
        # built-in token endpoint, which signs with that key.
        assertion = (cfg.auth.htpasswdFile == null && cfg.auth.robotsFile == null) || cfg.auth.tokenKeyFile != null;
        message = "services.ha-registry: `auth.htpasswdFile` and `auth.robotsFile` need `auth.tokenKeyFile`.";
      }
      {
        assertion = !(lib.any inStore [
          cfg.auth.tokenKeyFile
          cfg.auth.htpasswdFile
          cfg.auth.robotsFile
        ]);
        message = "services.ha-registry: `auth.tokenKeyFile`, `auth.htpasswdFile` and `auth.robotsFile` are secrets: name files outside the Nix store.";
      }
      {
        # The variable is split at commas, and each entry at its first =.
        assertion = lib.all (issuer: !(lib.hasInfix "," issuer || lib.hasInfix "=" issuer || lib.hasInfix "," "${cfg.auth.trustIssuers.${issuer}}")) (
          lib.attrNames cfg.auth.trustIssuers
        );
        message = "services.ha-registry: an `auth.trustIssuers` issuer may hold neither , nor =, and its file no comma.";
      }
    ];

    services.ha-registry.jobs.gc = mkIf cfg.gc.enable {
      args = [ "gc" ] ++ cfg.gc.extraArgs;
      inherit (cfg.gc) startAt;
    };

    environment.systemPackages = [ adminCommand ];

    environment.etc = mkIf hasPolicy { "ha-registry/policy.yaml".source = policyYaml; };

    networking.firewall.allowedTCPPorts = lib.optionals cfg.openFirewall [ cfg.port ];

    systemd.services =
      {
        ha-registry = {
          description = "ha-registry replica";
          wantedBy = [ "multi-user.target" ];
          # After the owner's migration; wanted, not required: when it
          # failed (PostgreSQL not up yet), serve refuses a schema behind
          # it and both are tried again until it succeeds.
          wants = dependencies ++ lib.optional splitRoles "ha-registry-migrate.service";
          after = dependencies ++ lib.optional splitRoles "ha-registry-migrate.service";
          environment = serveEnvironment;
          # A new policy is applied by a reload, not a restart: no request
          # is cut and no replica drains for a change of quotas.
          reloadTriggers = lib.optional hasPolicy policyYaml;
          # A replica that cannot reach PostgreSQL or S3 at boot exits; it
          # is tried again until they answer.
          startLimitIntervalSec = 0;
          serviceConfig = hardening // {
            # READY=1 once migrated and listening, STOPPING=1 when draining.
            Type = "notify";
            ExecStart = "${lib.getExe' cfg.package "registry"} serve";
            # serve re-reads its policy file on SIGHUP. systemd reloads only
            # an active unit, after READY=1, and serve catches SIGHUP from
            # before then, so a reload never kills it.
            # It also re-reads the htpasswd and robots files, which systemd
            # copies afresh first where it can (refreshCredentials).
            ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
            EnvironmentFile = environmentFiles;
            LoadCredential = lib.mapAttrsToList (id: file: "${id}:${file}") credentials;
            Restart = "on-failure";
            RestartSec = "5s";
            # Waiting behind another replica's migrations counts as starting.
            TimeoutStartSec = "15min";
            TimeoutStopSec = "${toString (cfg.drainDelay + cfg.shutdownTimeout + 15)}s";
            LimitNOFILE = 65536;
          }
          // lib.optionalAttrs refreshCredentials { RefreshOnReload = "credentials"; };
        };
      }
      // lib.optionalAttrs splitRoles {
        ha-registry-migrate = {
          description = "ha-registry: migrate the database as its owner and grant the serving role";
          wants = dependencies;
          after = dependencies;
          environment = migrateEnvironment;
          # Runs once per boot and again whenever the unit changes (a new
          # package): every migrate re-grants, so tables a release adds
          # reach the serving role before the new serve starts.
          restartTriggers = [ cfg.package ];
          startLimitIntervalSec = 0;
          serviceConfig = hardening // {
            Type = "oneshot";
            RemainAfterExit = true;
            Restart = "on-failure";
            RestartSec = "5s";
            ExecStart = "${lib.getExe' cfg.package "registry"} migrate";
            EnvironmentFile = migrateEnvironmentFiles;
            # Waiting behind another host's migrations.
            TimeoutStartSec = "15min";
          };
        };
      }
      // lib.mapAttrs' (
        name: job:
        lib.nameValuePair "ha-registry-${name}" {
          description = "ha-registry job: registry ${lib.concatStringsSep " " job.args}";
          wants = dependencies;
          after = dependencies;
          inherit environment;
          serviceConfig = hardening // {
            Type = "oneshot";
            ExecStart = "${lib.getExe' cfg.package "registry"} ${lib.escapeShellArgs job.args}";
            EnvironmentFile = environmentFiles;
          };
        }
      ) cfg.jobs;

    systemd.timers = lib.mapAttrs' (
      name: job:
      lib.nameValuePair "ha-registry-${name}" {
        description = "Timer for ha-registry job ${name}";
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnCalendar = job.startAt;
          RandomizedDelaySec = job.randomizedDelaySec;
          Persistent = true;
        };
      }
    ) (lib.filterAttrs (_: job: job.startAt != null) cfg.jobs);
  };
}
