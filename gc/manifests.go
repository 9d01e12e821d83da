// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/store"
)

// rowRef names an index row of a repository: a manifest or a blob link.
type rowRef struct {
	repoID int64
	repo   string
	digest string
}

// refArgs is the batch parameters of queries on rowRefs: $1 the
// repository ids, $2 the digests.
func refArgs(refs []rowRef) []any {
	ids := make([]int64, len(refs))
	ds := make([]string, len(refs))
	for i, r := range refs {
		ids[i], ds[i] = r.repoID, r.digest
	}
	return []any{ids, ds}
}

// digestLock is the lock of a row named by its digest: the one every
// writer of that digest's objects holds.
func digestLock(r rowRef) (int64, bool) { return store.DigestLockKey(digest.Digest(r.digest)), true }

// reachable is a recursive query of the manifests reachable from the
// roots CTE, which the caller defines: the roots, what they list (index
// entries), and what refers to anything reachable (referrers, whose
// subject field names it), to any depth.
const reachable = `edges (repository_id, src, dst) AS (
	SELECT repository_id, parent_digest, child_digest FROM manifest_children
	UNION ALL
	SELECT repository_id, subject, digest FROM manifests WHERE subject IS NOT NULL
), reach (repository_id, digest) AS (
	SELECT repository_id, digest FROM roots
	UNION
	SELECT e.repository_id, e.dst FROM edges e JOIN reach r ON r.repository_id = e.repository_id AND r.digest = e.src
)`

// agedSQL is true of row alias, a manifest or blob link (kind), that
// was created, and first found unreferenced by a pass, no later than the
// parameter cutoff; a row no pass has marked yet counts as found at the
// parameter now.
func agedSQL(kind, alias, now, cutoff string) string {
	return fmt.Sprintf(`greatest(%[2]s.created_at, coalesce((SELECT u.since FROM gc_unreferenced u
	WHERE u.kind = '%[1]s' AND u.repository_id = %[2]s.repository_id AND u.digest = %[2]s.digest), %[3]s::timestamptz)) <= %[4]s::timestamptz`,
		kind, alias, now, cutoff)
}

// manifestMark records, for every manifest no tag reaches, when a pass
// first found it so ($1), and forgets the marks of the others.
const manifestMark = `WITH RECURSIVE roots AS (SELECT repository_id, manifest_digest AS digest FROM tags), ` + reachable + `,
unreachable AS (
	SELECT m.repository_id, m.digest FROM manifests m
	WHERE NOT EXISTS (SELECT 1 FROM reach r WHERE r.repository_id = m.repository_id AND r.digest = m.digest)
), cleared AS (
	DELETE FROM gc_unreferenced u WHERE u.kind = 'manifest'
	AND NOT EXISTS (SELECT 1 FROM unreachable x WHERE x.repository_id = u.repository_id AND x.digest = u.digest)
)
INSERT INTO gc_unreferenced (kind, repository_id, digest, since)
SELECT 'manifest', repository_id, digest, $1 FROM unreachable ON CONFLICT DO NOTHING`

// manifestCandidates selects the manifests reachable from no tag and no
// manifest too young to go ($1 now, $2 cutoff): a young untagged index
// keeps its children, a young subject its referrers.
var manifestCandidates = `WITH RECURSIVE roots AS (
	SELECT repository_id, manifest_digest AS digest FROM tags
	UNION
	SELECT m.repository_id, m.digest FROM manifests m WHERE NOT (` + agedSQL("manifest", "m", "$1", "$2") + `)
), ` + reachable + `
SELECT m.repository_id, r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id
WHERE NOT EXISTS (SELECT 1 FROM reach x WHERE x.repository_id = m.repository_id AND x.digest = m.digest)
ORDER BY r.name, m.digest`

// manifestRecheck is true of a candidate manifest that may go now: no
// tag, no index that lists it and stays, no subject that stays, and old
// enough. Manifests removed earlier in the pass count as gone. With no
// way in left, nothing reaches it. $1, $2 are the batch, $3 now, $4 the
// cutoff.
var manifestRecheck = `(m.repository_id, m.digest) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))
	AND NOT EXISTS (SELECT 1 FROM gc_gone_manifests g WHERE g.repository_id = m.repository_id AND g.digest = m.digest)
	AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest)
	AND NOT EXISTS (SELECT 1 FROM manifest_children c WHERE c.repository_id = m.repository_id AND c.child_digest = m.digest
		AND NOT EXISTS (SELECT 1 FROM gc_gone_manifests g WHERE g.repository_id = c.repository_id AND g.digest = c.parent_digest))
	AND NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject
		AND NOT EXISTS (SELECT 1 FROM gc_gone_manifests g WHERE g.repository_id = s.repository_id AND g.digest = s.digest))
	AND ` + agedSQL("manifest", "m", "$3", "$4")

// sweepManifests removes untagged manifests, with --delete-untagged. A
// manifest goes only after everything that listed it or was its subject
// went: the candidates are removed in rounds, each taking those whose
// ways in are all gone, until a round removes nothing.
func (p *pass) sweepManifests(ctx context.Context) error {
	if !p.opts.DeleteUntagged {
		// Marks from passes that had the flag would otherwise count the
		// grace from then, when the flag is turned on again.
		if !p.opts.DryRun {
			_, err := p.conn.Exec(ctx, `DELETE FROM gc_unreferenced WHERE kind = 'manifest'`)
			return err
		}
		return nil
	}
	if !p.opts.DryRun {
		tag, err := p.conn.Exec(ctx, manifestMark, p.now)
		if err != nil {
			return fmt.Errorf("marking: %w", err)
		}
		p.sum.Marked += tag.RowsAffected()
	}
	cands, err := p.refs(ctx, manifestCandidates, p.now, p.cutoff)
	if err != nil {
		return err
	}
	removal := rowRemoval[rowRef, rowRef]{
		table: "manifests m", where: manifestRecheck, returning: "m.repository_id, m.digest",
		args: func(b []rowRef) []any { return append(refArgs(b), p.now, p.cutoff) },
		scan: scanRef,
	}
	for len(cands) > 0 {
		items, err := sweepBatches(ctx, p, KindManifest, cands, digestLock, func(ctx context.Context, b []rowRef) ([]Item, error) {
			gone, err := removeRows(ctx, p, removal, b)
			if err != nil {
				return nil, err
			}
			return p.gone(ctx, KindManifest, "gc_gone_manifests", b, gone, func(r rowRef) Item {
				return Item{Kind: KindManifest, Repo: r.repo, Digest: r.digest, Bytes: int64(len(r.digest)),
					Objects: []string{p.layout.RevisionLink(r.repo, digest.Digest(r.digest))}}
			})
		})
		p.sum.Removed = append(p.sum.Removed, items...)
		if err != nil || len(items) == 0 {
			p.sum.Kept += int64(len(cands) - len(items))
			return err
		}
		cands = without(cands, items)
	}
	return nil
}

// refs runs a query of (repository id, repository name, digest) rows.
func (p *pass) refs(ctx context.Context, query string, args ...any) ([]rowRef, error) {
	rows, err := p.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("choosing candidates: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (rowRef, error) {
		var r rowRef
		err := row.Scan(&r.repoID, &r.repo, &r.digest)
		return r, err
	})
}

// scanRef scans a (repository id, digest) row.
func scanRef(row pgx.CollectableRow) (rowRef, error) {
	var r rowRef
	err := row.Scan(&r.repoID, &r.digest)
	return r, err
}

// gone records the rows of kind a batch removed in the pass's gone table,
// forgets their marks, and returns them as items, with the repository
// names of the batch.
func (p *pass) gone(ctx context.Context, kind Kind, table string, batch, gone []rowRef, item func(rowRef) Item) ([]Item, error) {
	if len(gone) == 0 {
		return nil, nil
	}
	if _, err := p.conn.Exec(ctx, `INSERT INTO `+table+` SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT DO NOTHING`,
		refArgs(gone)...); err != nil {
		return nil, err
	}
	if !p.opts.DryRun {
		if _, err := p.conn.Exec(ctx, `DELETE FROM gc_unreferenced WHERE kind = $3
			AND (repository_id, digest) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))`,
			append(refArgs(gone), string(kind))...); err != nil {
			return nil, err
		}
	}
	names := make(map[int64]string, len(batch))
	for _, r := range batch {
		names[r.repoID] = r.repo
	}
	items := make([]Item, len(gone))
	for i, r := range gone {
		r.repo = names[r.repoID]
		items[i] = item(r)
	}
	return items, nil
}

// without returns the candidates no item names.
func without(cands []rowRef, items []Item) []rowRef {
	done := make(map[[2]string]bool, len(items))
	for _, it := range items {
		done[[2]string{it.Repo, it.Digest}] = true
	}
	var rest []rowRef
	for _, c := range cands {
		if !done[[2]string{c.repo, c.digest}] {
			rest = append(rest, c)
		}
	}
	return rest
}
