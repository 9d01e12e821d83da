// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// DistributionCommand returns the command that runs CNCF distribution's
// registry binary bin on addr, with its S3 driver on cfg's bucket under
// the root directory root. Blobs are streamed (no redirects) and upload
// purging is off, so that a test or a benchmark sees only its own work.
// The configuration file is written into dir. env is the environment
// without REGISTRY_* variables, which distribution would read as
// configuration.
func DistributionCommand(t testing.TB, bin, dir, addr, root string, cfg S3Config, env []string) *exec.Cmd {
	t.Helper()
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  s3:
    accesskey: %s
    secretkey: %s
    region: %s
    regionendpoint: %s
    bucket: %s
    forcepathstyle: true
    rootdirectory: /%s
  delete:
    enabled: true
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: testenv-distribution
`, cfg.AccessKey, cfg.SecretKey, cfg.Region, cfg.Endpoint, cfg.Bucket, root, addr)
	path := filepath.Join(dir, "distribution.yml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", path)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// Without a collector, the exporter's retries would fill the log.
	cmd.Env = append(cmd.Env, "OTEL_TRACES_EXPORTER=none")
	return cmd
}
