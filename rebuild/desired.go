// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// From the staged bucket, the run derives what the index should hold (the
// d_ tables) by the rules a push follows: a manifest is indexed in a
// repository when the repository has its revision link, its bytes parse,
// every blob it references is linked into the repository with the size the
// descriptor gives, and every manifest it lists is indexed in the same
// repository in turn. A tag is indexed when its manifest is. Whatever
// fails a rule is reported as damage and left out.

// desiredSetup builds the d_ tables that need no reporting.
var desiredSetup = []string{
	// A manifest that was read exists, even if it was written after its
	// part of the blob store was listed.
	`INSERT INTO s_blobs (digest, size, modified)
		SELECT m.digest, length(m.content), now() FROM s_manifests m
		WHERE NOT EXISTS (SELECT 1 FROM s_blobs b WHERE b.digest = m.digest)`,
	`CREATE TEMP TABLE d_repos AS
		SELECT repo FROM s_layers UNION SELECT repo FROM s_revisions UNION SELECT repo FROM s_tags`,
	`CREATE TEMP TABLE d_repo_blobs AS
		SELECT l.repo, l.digest, l.modified FROM s_layers l JOIN s_blobs b USING (digest)`,
	`CREATE TEMP TABLE d_manifests AS
		SELECT r.repo, r.digest, r.modified FROM s_revisions r
		WHERE EXISTS (SELECT 1 FROM s_manifests m WHERE m.digest = r.digest)`,
	`CREATE INDEX ON d_manifests (repo, digest)`,
	`ANALYZE d_repo_blobs, d_manifests`,
}

// findingQuery selects findings of one kind as (repo, tag, digest,
// detail).
type findingQuery struct {
	kind Kind
	sql  string
}

// danglingLinks finds blob links to blobs the bucket lacks.
var danglingLinks = findingQuery{BlobLinkDangling, `SELECT l.repo, '', l.digest, 'the repository links a blob the bucket does not hold'
	FROM s_layers l WHERE NOT EXISTS (SELECT 1 FROM s_blobs b WHERE b.digest = l.digest)`}

// damagedRevisions finds the revision links to manifests that could not
// be read or parsed, with the kind the reading found.
const damagedRevisions = `SELECT r.repo, r.digest, d.kind, d.reason FROM s_revisions r JOIN s_damaged d USING (digest)`

// badBlobRefs finds the manifests whose blobs are not usable, the
// repository and digest first so that they can be dropped.
const badBlobRefs = `SELECT DISTINCT dm.repo, dm.digest, f.ref, f.size, b.size, l.digest IS NOT NULL
	FROM d_manifests dm JOIN s_refs f ON f.digest = dm.digest AND NOT f.child
	LEFT JOIN s_blobs b ON b.digest = f.ref
	LEFT JOIN s_layers l ON l.repo = dm.repo AND l.digest = f.ref
	WHERE b.digest IS NULL OR l.digest IS NULL OR b.size <> f.size`

// badChildRefs finds the indexes listing a manifest that is not indexed.
const badChildRefs = `SELECT DISTINCT p.repo, p.digest, f.ref
	FROM d_manifests p JOIN s_refs f ON f.digest = p.digest AND f.child
	WHERE NOT EXISTS (SELECT 1 FROM d_manifests c WHERE c.repo = p.repo AND c.digest = f.ref)`

// tagDamage finds the tags whose manifest is not indexed.
const tagDamage = `SELECT t.repo, t.tag, t.digest,
		EXISTS (SELECT 1 FROM s_revisions r WHERE r.repo = t.repo AND r.digest = t.digest)
	FROM s_tags t
	WHERE NOT EXISTS (SELECT 1 FROM d_manifests m WHERE m.repo = t.repo AND m.digest = t.digest)`

// derive builds the d_ tables on conn, reporting what it leaves out.
func derive(ctx context.Context, conn *pgx.Conn, rep *reporter) error {
	for _, q := range desiredSetup {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("deriving the index: %w", err)
		}
	}
	if err := reportRows(ctx, conn, rep, danglingLinks); err != nil {
		return err
	}
	err := queryEach(ctx, conn, damagedRevisions, func(rows pgx.Rows) error {
		var f Finding
		if err := rows.Scan(&f.Repo, &f.Digest, &f.Kind, &f.Detail); err != nil {
			return err
		}
		rep.add(f)
		return nil
	})
	if err != nil {
		return err
	}
	// Blob references: one pass.
	var drop [][2]string
	err = queryEach(ctx, conn, badBlobRefs, func(rows pgx.Rows) error {
		var repo, d, ref string
		var declared int64
		var actual *int64
		var linked bool
		if err := rows.Scan(&repo, &d, &ref, &declared, &actual, &linked); err != nil {
			return err
		}
		f := Finding{Kind: ManifestBlobMissing, Repo: repo, Digest: d}
		switch {
		case actual == nil:
			f.Detail = fmt.Sprintf("the manifest references blob %s, which the bucket does not hold", ref)
		case !linked:
			f.Detail = fmt.Sprintf("the manifest references blob %s, which the repository does not link", ref)
		default:
			f.Kind = ManifestBlobSize
			f.Detail = fmt.Sprintf("the manifest gives blob %s a size of %d bytes; its object has %d", ref, declared, *actual)
		}
		rep.add(f)
		drop = append(drop, [2]string{repo, d})
		return nil
	})
	if err != nil {
		return err
	}
	if err := dropManifests(ctx, conn, drop); err != nil {
		return err
	}
	// Index entries: until no index lists a left-out manifest, since
	// leaving out an index may leave out the index that lists it.
	for {
		drop = drop[:0]
		err := queryEach(ctx, conn, badChildRefs, func(rows pgx.Rows) error {
			var repo, d, child string
			if err := rows.Scan(&repo, &d, &child); err != nil {
				return err
			}
			rep.add(Finding{Kind: ManifestChildMissing, Repo: repo, Digest: d,
				Detail: fmt.Sprintf("the index lists manifest %s, which is not a usable manifest of the repository", child)})
			drop = append(drop, [2]string{repo, d})
			return nil
		})
		if err != nil {
			return err
		}
		if len(drop) == 0 {
			break
		}
		if err := dropManifests(ctx, conn, drop); err != nil {
			return err
		}
	}
	err = queryEach(ctx, conn, tagDamage, func(rows pgx.Rows) error {
		var repo, tag, d string
		var revision bool
		if err := rows.Scan(&repo, &tag, &d, &revision); err != nil {
			return err
		}
		detail := "the tag points at a manifest the repository has no revision link for"
		if revision {
			detail = "the tag points at a manifest that cannot be indexed (see the manifest's finding)"
		}
		rep.add(Finding{Kind: TagTargetMissing, Repo: repo, Tag: tag, Digest: d, Detail: detail})
		return nil
	})
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `CREATE TEMP TABLE d_tags AS
		SELECT t.repo, t.tag, t.digest, t.modified FROM s_tags t
		WHERE EXISTS (SELECT 1 FROM d_manifests m WHERE m.repo = t.repo AND m.digest = t.digest)`)
	return err
}

// dropManifests removes (repository, digest) pairs from d_manifests.
func dropManifests(ctx context.Context, conn *pgx.Conn, pairs [][2]string) error {
	if len(pairs) == 0 {
		return nil
	}
	repos := make([]string, len(pairs))
	digests := make([]string, len(pairs))
	for i, p := range pairs {
		repos[i], digests[i] = p[0], p[1]
	}
	_, err := conn.Exec(ctx, `DELETE FROM d_manifests d USING unnest($1::text[], $2::text[]) AS x(repo, digest)
		WHERE d.repo = x.repo AND d.digest = x.digest`, repos, digests)
	return err
}

// reportRows reports every row of q as a finding of q's kind.
func reportRows(ctx context.Context, conn *pgx.Conn, rep *reporter, q findingQuery) error {
	return queryEach(ctx, conn, q.sql, func(rows pgx.Rows) error {
		f := Finding{Kind: q.kind}
		if err := rows.Scan(&f.Repo, &f.Tag, &f.Digest, &f.Detail); err != nil {
			return err
		}
		rep.add(f)
		return nil
	})
}

// queryEach runs q and calls fn for each row.
func queryEach(ctx context.Context, conn *pgx.Conn, q string, fn func(pgx.Rows) error, args ...any) error {
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
