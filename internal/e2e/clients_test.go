// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// run runs a client and returns its stdout, failing the test with the
// whole output when it fails.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// layerTar writes a tar holding one random file and returns its path.
func layerTar(t *testing.T, dir, name string, size int) string {
	t.Helper()
	content := make([]byte, size)
	rand.Read(content)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg})
	tw.Write(content)
	tw.Close()
	p := filepath.Join(dir, name+".tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClients round-trips content through the registry with crane, oras,
// regctl and skopeo: a multi-arch index, a copy between repositories by
// mount, an artifact attached to an image and found again through the
// referrers API, and a file pulled back byte-identical.
func TestClients(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	oras := testenv.Tool(t, "oras")
	regctl := testenv.Tool(t, "regctl")
	skopeo := testenv.Tool(t, "skopeo")
	s := Start(t)
	dir := t.TempDir()
	home := []string{"HOME=" + dir, "DOCKER_CONFIG=" + filepath.Join(dir, "docker")}
	reg := s.Addr

	// crane: two single-platform images (one with a layer over 5 MiB, so
	// the push spans S3 parts) and an index of both.
	for _, p := range []struct{ arch, size string }{{"amd64", "small"}, {"arm64", "big"}} {
		n := 64 << 10
		if p.size == "big" {
			n = 7 << 20
		}
		layer := layerTar(t, dir, p.arch, n)
		ref := reg + "/clients/base:" + p.arch
		run(t, home, crane, "append", "--insecure", "-f", layer, "-t", ref)
		run(t, home, crane, "mutate", "--insecure", "--set-platform", "linux/"+p.arch, "-t", ref, ref)
	}
	multi := reg + "/clients/base:multi"
	run(t, home, crane, "index", "append", "--insecure", "-m", reg+"/clients/base:amd64", "-m", reg+"/clients/base:arm64", "-t", multi)
	want := strings.TrimSpace(run(t, home, crane, "digest", "--insecure", multi))

	// A copy to another repository mounts the blobs instead of uploading.
	verbose := exec.Command(crane, "copy", "--insecure", "-v", multi, reg+"/clients/copy:multi")
	verbose.Env = append(os.Environ(), home...)
	out, err := verbose.CombinedOutput()
	if err != nil {
		t.Fatalf("crane copy: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "mount=") {
		t.Errorf("crane copy did not mount blobs across repositories:\n%s", out)
	}
	if got := strings.TrimSpace(run(t, home, crane, "digest", "--insecure", reg+"/clients/copy:multi")); got != want {
		t.Errorf("copied index digest %s, want %s", got, want)
	}

	// skopeo copies every platform of the index (skopeo 1.9 rewrites an
	// OCI index of Docker manifests, so the index digest may change), and
	// single images byte-identical, through the registry and a directory.
	skopeoCopy := func(src, dst string) {
		run(t, home, skopeo, "copy", "--insecure-policy", "--src-tls-verify=false", "--dest-tls-verify=false", src, dst)
	}
	run(t, home, skopeo, "copy", "--all", "--insecure-policy", "--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://"+multi, "docker://"+reg+"/clients/skopeo:multi")
	if raw := run(t, home, skopeo, "inspect", "--raw", "--tls-verify=false", "docker://"+reg+"/clients/skopeo:multi"); strings.Count(raw, `"digest"`) != 2 {
		t.Errorf("skopeo's copy of the index does not list two images:\n%s", raw)
	}
	armDigest := strings.TrimSpace(run(t, home, crane, "digest", "--insecure", reg+"/clients/base:arm64"))
	skopeoDir := filepath.Join(dir, "skopeo-dir")
	skopeoCopy("docker://"+reg+"/clients/base:arm64", "dir:"+skopeoDir)
	skopeoCopy("dir:"+skopeoDir, "docker://"+reg+"/clients/skopeo:arm64")
	if got := strings.TrimSpace(run(t, home, crane, "digest", "--insecure", reg+"/clients/skopeo:arm64")); got != armDigest {
		t.Errorf("skopeo round trip digest %s, want %s", got, armDigest)
	}

	// oras: a file round-trips byte-identical, and an artifact attached to
	// the index is found through the referrers API.
	file := filepath.Join(dir, "hello.txt")
	content := make([]byte, 300<<10)
	rand.Read(content)
	os.WriteFile(file, content, 0o644)
	orasCmd := func(args ...string) string {
		c := exec.Command(oras, args...)
		c.Dir = dir
		c.Env = append(os.Environ(), home...)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("oras %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	orasCmd("push", "--plain-http", reg+"/clients/files:v1", "hello.txt:application/octet-stream")
	pulled := filepath.Join(dir, "pulled")
	orasCmd("pull", "--plain-http", "-o", pulled, reg+"/clients/files:v1")
	got, err := os.ReadFile(filepath.Join(pulled, "hello.txt"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("oras pull returned different bytes (err %v)", err)
	}
	os.WriteFile(filepath.Join(dir, "sbom.json"), []byte(`{"sbom":true}`), 0o644)
	orasCmd("attach", "--plain-http", "--distribution-spec", "v1.1-referrers-api",
		"--artifact-type", "application/vnd.example.sbom", multi, "sbom.json:application/json")
	if d := orasCmd("discover", "--plain-http", "--format", "json", multi); !strings.Contains(d, "application/vnd.example.sbom") {
		t.Errorf("oras discover does not list the attached sbom:\n%s", d)
	}

	// regctl: copy, same digest, and the referrer is listed.
	run(t, home, regctl, "registry", "set", "--tls", "disabled", reg)
	run(t, home, regctl, "image", "copy", multi, reg+"/clients/regctl:multi")
	if got := strings.TrimSpace(run(t, home, regctl, "image", "digest", reg+"/clients/regctl:multi")); got != want {
		t.Errorf("regctl copy digest %s, want %s", got, want)
	}
	if l := run(t, home, regctl, "artifact", "list", "--format", "{{json .}}", multi); !strings.Contains(l, "application/vnd.example.sbom") {
		t.Errorf("regctl artifact list does not show the sbom:\n%s", l)
	}

	// The mount really linked the blobs into the second repository.
	var links int
	if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM repository_blobs rb
		JOIN repositories r ON r.id = rb.repository_id WHERE r.name = 'clients/copy'`).Scan(&links); err != nil || links == 0 {
		t.Errorf("clients/copy has %d blob links (err %v)", links, err)
	}
}
