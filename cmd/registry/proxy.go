// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/internal/proxy"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/policy"
	oci "github.com/ha-registry/ha-registry/registry"
)

func proxyCommand() *cli.Command {
	flags := storeJobFlags(policyFlag(true),
		&cli.BoolFlag{Name: "json", Usage: "print JSON for machines instead of a table"})
	return &cli.Command{
		Name:  "proxy",
		Usage: "list the pull-through caches (remotes) with their size and hit rate",
		Flags: flags,
		Action: func(c *cli.Context) error {
			return withProxy(c, func(p *policy.Policy, st *store.Store, _ *proxy.Store) error { return listRemotes(c, p, st) })
		},
		Subcommands: []*cli.Command{{
			Name:      "warm",
			Usage:     "pull an image (every platform of an index) into the cache, ahead of its first use",
			ArgsUsage: "REPOSITORY:TAG | REPOSITORY@DIGEST (under a remote's prefix)",
			Flags:     flags,
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return fmt.Errorf("give one image, such as dockerhub/library/nginx:1.27")
				}
				return withProxy(c, func(p *policy.Policy, _ *store.Store, px *proxy.Store) error {
					return warm(c, p, px, c.Args().First())
				})
			},
		}},
	}
}

// withProxy opens the store and the cache over it.
func withProxy(c *cli.Context, fn func(*policy.Policy, *store.Store, *proxy.Store) error) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	p, err := loadPolicy(c)
	if err != nil {
		return err
	}
	st, pool, err := openStore(c.Context, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	px := proxy.New(st, func() *policy.Policy { return p }, log)
	err = fn(p, st, px)
	if ferr := px.FlushStats(c.Context); err == nil {
		err = ferr
	}
	return err
}

// remoteRow is one line of registry proxy.
type remoteRow struct {
	Prefix  string  `json:"prefix"`
	URL     string  `json:"url"`
	Bytes   int64   `json:"bytes"`
	Hits    int64   `json:"hits"`
	Misses  int64   `json:"misses"`
	HitRate float64 `json:"hitRate"`
}

func listRemotes(c *cli.Context, p *policy.Policy, st *store.Store) error {
	rows := []remoteRow{}
	for _, r := range p.Remotes {
		size, err := st.ProxyCacheSize(c.Context, r.Prefix)
		if err != nil {
			return err
		}
		hits, misses, err := st.ProxyStats(c.Context, r.Prefix)
		if err != nil {
			return err
		}
		row := remoteRow{Prefix: r.Prefix, URL: r.URL, Bytes: size, Hits: hits, Misses: misses}
		if hits+misses > 0 {
			row.HitRate = float64(hits) / float64(hits+misses)
		}
		rows = append(rows, row)
	}
	w := c.App.Writer
	if done, err := printJSONOrNone(c, rows, len(rows), "the policy file declares no remotes"); done {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tUPSTREAM\tCACHED\tHITS\tMISSES\tHIT RATE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.1f%%\n", r.Prefix, r.URL, policy.FormatSize(r.Bytes), r.Hits, r.Misses, 100*r.HitRate)
	}
	return tw.Flush()
}

// warm pulls ref through the cache: the manifest, every manifest an index
// lists, and every blob, read to the end so each is stored.
func warm(c *cli.Context, p *policy.Policy, px *proxy.Store, ref string) error {
	repo, tag, d, err := parseImage(ref)
	if err != nil {
		return err
	}
	if _, ok := p.RemoteFor(repo); !ok {
		return fmt.Errorf("%s is under no remote of the policy file", repo)
	}
	ctx := c.Context
	var manifests, blobs int
	var bytes int64
	var pull func(tag string, d digest.Digest) error
	pull = func(tag string, d digest.Digest) error {
		m, err := px.GetManifest(ctx, repo, tag, d)
		if err != nil {
			return err
		}
		manifests++
		parsed, err := oci.ParseManifest(m.MediaType, m.Content)
		if err != nil {
			return err
		}
		for _, child := range parsed.Children {
			if err := pull("", child.Digest); err != nil {
				return fmt.Errorf("%s@%s: %w", repo, child.Digest, err)
			}
		}
		for _, b := range parsed.Blobs {
			info, err := px.StatBlob(ctx, repo, b.Digest)
			if err != nil {
				return fmt.Errorf("blob %s: %w", b.Digest, err)
			}
			rc, err := px.OpenBlob(ctx, repo, b.Digest, 0, info.Size)
			if err != nil {
				return fmt.Errorf("blob %s: %w", b.Digest, err)
			}
			n, err := io.Copy(io.Discard, rc)
			if cerr := rc.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("blob %s: %w", b.Digest, err)
			}
			blobs++
			bytes += n
		}
		return nil
	}
	if err := pull(tag, d); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "warmed %s: %d manifests, %d blobs, %s\n", ref, manifests, blobs, policy.FormatSize(bytes))
	return nil
}

// parseImage splits REPOSITORY:TAG or REPOSITORY@DIGEST.
func parseImage(ref string) (repo, tag string, d digest.Digest, err error) {
	if r, dg, ok := strings.Cut(ref, "@"); ok {
		if d, err = oci.ParseDigest(dg); err != nil {
			return "", "", "", fmt.Errorf("%s: %w", ref, err)
		}
		repo = r
	} else {
		i := strings.LastIndex(ref, ":")
		if i < 0 || strings.Contains(ref[i:], "/") {
			return "", "", "", fmt.Errorf("%s: give a tag or a digest (REPOSITORY:TAG or REPOSITORY@DIGEST)", ref)
		}
		repo, tag = ref[:i], ref[i+1:]
		if !oci.ValidTag(tag) {
			return "", "", "", fmt.Errorf("%s: %q is not a valid tag", ref, tag)
		}
	}
	if err := oci.ValidateName(repo); err != nil {
		return "", "", "", fmt.Errorf("%s: %w", ref, err)
	}
	return repo, tag, d, nil
}
