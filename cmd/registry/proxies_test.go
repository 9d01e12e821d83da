// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestServeRefusesMalformedTrustedProxies: a typo in the list of trusted
// proxies stops the start with the entry named, by flag and by variable,
// before anything else is touched.
func TestServeRefusesMalformedTrustedProxies(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  string
	}{
		{args: []string{"--trusted-proxies", "10.0.0.0/8,10.0.0.300"}},
		{env: "REGISTRY_TRUSTED_PROXIES=127.0.0.1,not-an-address"},
		{args: []string{"--trusted-proxies", "fe80::1%eth0"}},
	} {
		cmd := exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...)...)
		cmd.Env = append(os.Environ(), "REGISTRY_DATABASE_URL=postgres://127.0.0.1:1/none", "REGISTRY_S3_BUCKET=none", c.env)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--trusted-proxies") || !strings.Contains(string(out), "is neither an IP address nor a CIDR") {
			t.Errorf("serve %v %s: err %v, output:\n%s", c.args, c.env, err, out)
		}
	}
}
