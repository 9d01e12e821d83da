// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// bigManifestClient is Python's http.client pushing a manifest body over
// the limit the way many clients do: the whole body first, then the
// answer. A server that closes the connection while the body is still
// coming makes such a client fail with a broken pipe, never seeing why.
const bigManifestClient = `
import http.client, json, sys
host, port, size, chunked = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "chunked"
body = b"{" + b" " * size + b"}"
conn = http.client.HTTPConnection(host, port, timeout=60)
headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
if chunked:
    conn.request("PUT", "/v2/big/app/manifests/v1", body=iter([body[i:i+65536] for i in range(0, len(body), 65536)]),
                 headers=headers, encode_chunked=True)
else:
    conn.request("PUT", "/v2/big/app/manifests/v1", body=body, headers=headers)
resp = conn.getresponse()
print(resp.status, json.loads(resp.read())["errors"][0]["code"])
`

// TestOversizedManifestAnswerIsReadable: a manifest PUT over the 4 MiB
// limit is answered 413 with the spec's JSON body, and a client that
// sends the whole body before it reads the answer reads it, with a
// Content-Length and chunked alike.
func TestOversizedManifestAnswerIsReadable(t *testing.T) {
	python := testenv.Tool(t, "python3")
	s := Start(t)
	host, port, _ := strings.Cut(s.Addr, ":")
	for _, mode := range []string{"length", "chunked"} {
		out, err := exec.Command(python, "-c", bigManifestClient, host, port, "6000000", mode).CombinedOutput()
		if err != nil {
			t.Errorf("%s: the client failed: %v\n%s", mode, err, out)
			continue
		}
		if got := strings.TrimSpace(string(out)); got != "413 MANIFEST_INVALID" {
			t.Errorf("%s: the client read %q, want 413 MANIFEST_INVALID", mode, got)
		}
	}
}
