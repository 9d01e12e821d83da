// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ha-registry/ha-registry/s3store"
)

// call sends one request to the stack and returns the response with its
// body read.
func call(t *testing.T, s *Stack, method, path string, headers map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.Addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	// Keep the path exactly as written, percent-encodings included.
	req.URL.Opaque = "//" + s.Addr + path
	if strings.Contains(path, "?") {
		q := path[strings.Index(path, "?")+1:]
		req.URL.Opaque = "//" + s.Addr + path[:strings.Index(path, "?")]
		req.URL.RawQuery = q
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

// snapshot is the whole persistent state: every index row and every
// bucket key, so a test can prove that a refused request changed nothing.
func snapshot(t *testing.T, s *Stack) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, table := range []string{"repositories", "blobs", "repository_blobs", "manifests", "manifest_blobs", "manifest_children", "tags", "uploads"} {
		rows, err := s.DB.Query(ctx, fmt.Sprintf(`SELECT t::text FROM %s t ORDER BY 1`, table))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var r string
			rows.Scan(&r)
			fmt.Fprintf(&b, "%s %s\n", table, r)
		}
		rows.Close()
	}
	var keys []string
	if err := s.S3.List(ctx, "", func(o s3store.ObjectInfo) error {
		keys = append(keys, fmt.Sprintf("%s %d", o.Key, o.Size))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.S3.ListUploads(ctx, "", func(u s3store.UploadInfo) error {
		keys = append(keys, "multipart "+u.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	b.WriteString(strings.Join(keys, "\n"))
	return b.String()
}
