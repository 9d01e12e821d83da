// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package scan

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/registry"
)

// exportArchive writes image m of repo as a docker-archive tar (what
// `docker save` writes: manifest.json, the config, the layers as stored,
// compressed or not), which scanners read.
func exportArchive(ctx context.Context, blobs registry.BlobReader, repo string, m *registry.Manifest, w io.Writer) error {
	if len(m.Blobs) == 0 {
		return fmt.Errorf("manifest has no config")
	}
	config, layers := m.Blobs[0], m.Blobs[1:]
	tw := tar.NewWriter(w)
	manifest := []struct {
		Config string
		Layers []string
	}{{Config: config.Digest.Encoded() + ".json"}}
	if err := copyBlob(ctx, tw, blobs, repo, manifest[0].Config, config.Digest, config.Size); err != nil {
		return err
	}
	for _, l := range layers {
		name := l.Digest.Encoded() + ".tar"
		manifest[0].Layers = append(manifest[0].Layers, name)
		if err := copyBlob(ctx, tw, blobs, repo, name, l.Digest, l.Size); err != nil {
			return err
		}
	}
	b, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(b); err != nil {
		return err
	}
	return tw.Close()
}

func copyBlob(ctx context.Context, tw *tar.Writer, blobs registry.BlobReader, repo, name string, d digest.Digest, size int64) error {
	rc, err := blobs.OpenBlob(ctx, repo, d, 0, -1)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	defer rc.Close()
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, rc, size); err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	return nil
}
