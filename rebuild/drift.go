// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

// The comparison of what the index should hold (the d_ tables, s_blobs for
// blobs) with what it holds. Each query selects findings as (repository,
// tag, digest, detail).

// lacksQueries find what the bucket holds and the index does not. A
// rebuild applies them ([insertions]); --verify only reports them.
var lacksQueries = []findingQuery{
	{IndexLacksRepository, `SELECT x.repo, '', '', 'the bucket holds this repository; the index does not'
		FROM d_repos x WHERE NOT EXISTS (SELECT 1 FROM repositories r WHERE r.name = x.repo)`},
	{IndexLacksBlob, `SELECT '', '', b.digest, 'the bucket holds this blob; the index does not'
		FROM s_blobs b WHERE NOT EXISTS (SELECT 1 FROM blobs x WHERE x.digest = b.digest)`},
	{IndexLacksBlobLink, `SELECT x.repo, '', x.digest, 'the bucket links this blob into the repository; the index does not'
		FROM d_repo_blobs x WHERE NOT EXISTS (SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
			WHERE r.name = x.repo AND rb.digest = x.digest)`},
	{IndexLacksManifest, `SELECT x.repo, '', x.digest, 'the bucket holds this manifest in the repository; the index does not'
		FROM d_manifests x WHERE NOT EXISTS (SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repository_id
			WHERE r.name = x.repo AND m.digest = x.digest)`},
	{IndexLacksReference, `SELECT DISTINCT x.repo, '', x.digest, 'the index lacks the manifest''s reference to ' || f.ref
		FROM d_manifests x JOIN repositories r ON r.name = x.repo
		JOIN manifests m ON m.repository_id = r.id AND m.digest = x.digest
		JOIN s_refs f ON f.digest = x.digest
		WHERE NOT f.child AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb
				WHERE mb.repository_id = r.id AND mb.manifest_digest = x.digest AND mb.blob_digest = f.ref)
			OR f.child AND NOT EXISTS (SELECT 1 FROM manifest_children mc
				WHERE mc.repository_id = r.id AND mc.parent_digest = x.digest AND mc.child_digest = f.ref)`},
	{IndexLacksTag, `SELECT x.repo, x.tag, x.digest, 'the bucket has this tag; the index does not'
		FROM d_tags x WHERE NOT EXISTS (SELECT 1 FROM tags t JOIN repositories r ON r.id = t.repository_id
			WHERE r.name = x.repo AND t.name = x.tag)`},
}

// movedTags finds the tags the index points elsewhere than the bucket,
// with the index's digest as the detail.
const movedTags = `SELECT x.repo, x.tag, x.digest, t.manifest_digest
	FROM d_tags x JOIN repositories r ON r.name = x.repo JOIN tags t ON t.repository_id = r.id AND t.name = x.tag
	WHERE t.manifest_digest <> x.digest`

// blobSizes finds blobs the index gives another size than the bucket.
var blobSizes = findingQuery{BlobSizeDiffers, `SELECT '', '', b.digest,
		'the index records ' || x.size || ' bytes; the object has ' || b.size
	FROM s_blobs b JOIN blobs x USING (digest) WHERE x.size <> b.size`}

// staleQueries find index rows whose object the listing did not find. A
// listing proves existence, never absence: --repair checks each object
// again before it deletes a row.
var staleQueries = []findingQuery{
	{StaleTag, `SELECT r.name, t.name, t.manifest_digest, 'the index has this tag; the bucket has no current link for it'
		FROM tags t JOIN repositories r ON r.id = t.repository_id
		WHERE NOT EXISTS (SELECT 1 FROM s_tags x WHERE x.repo = r.name AND x.tag = t.name)`},
	{StaleManifest, `SELECT r.name, '', m.digest, CASE
			WHEN NOT EXISTS (SELECT 1 FROM s_blobs b WHERE b.digest = m.digest) THEN 'the bucket holds no bytes for this indexed manifest'
			ELSE 'the bucket has no revision link for this indexed manifest' END
		FROM manifests m JOIN repositories r ON r.id = m.repository_id
		WHERE NOT EXISTS (SELECT 1 FROM s_revisions x WHERE x.repo = r.name AND x.digest = m.digest)
			OR NOT EXISTS (SELECT 1 FROM s_blobs b WHERE b.digest = m.digest)`},
	{StaleBlobLink, `SELECT r.name, '', rb.digest, CASE
			WHEN NOT EXISTS (SELECT 1 FROM s_blobs b WHERE b.digest = rb.digest) THEN 'the bucket holds no bytes for this linked blob'
			ELSE 'the bucket has no link for this blob in the repository' END
		FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
		WHERE NOT EXISTS (SELECT 1 FROM s_layers x WHERE x.repo = r.name AND x.digest = rb.digest)
			OR NOT EXISTS (SELECT 1 FROM s_blobs b WHERE b.digest = rb.digest)`},
	{StaleBlob, `SELECT '', '', x.digest, 'the index has this blob; the bucket does not'
		FROM blobs x WHERE NOT EXISTS (SELECT 1 FROM s_blobs b WHERE b.digest = x.digest)`},
}

// insertion adds to one index table what the bucket holds and it lacks.
type insertion struct {
	count *int64 // where in [Changes] the inserted rows are counted
	sql   string
}

// insertions fill the index from the d_ tables, parents before children
// so that every foreign key holds. ON CONFLICT DO NOTHING keeps what is
// there, including rows a replica writes meanwhile.
func insertions(c *Changes) []insertion {
	return []insertion{
		{&c.Repositories, `INSERT INTO repositories (name) SELECT repo FROM d_repos ORDER BY repo ON CONFLICT (name) DO NOTHING`},
		{&c.Blobs, `INSERT INTO blobs (digest, size, created_at) SELECT digest, size, modified FROM s_blobs ON CONFLICT (digest) DO NOTHING`},
		{&c.BlobLinks, `INSERT INTO repository_blobs (repository_id, digest, created_at)
			SELECT r.id, x.digest, x.modified FROM d_repo_blobs x JOIN repositories r ON r.name = x.repo ON CONFLICT DO NOTHING`},
		{&c.Manifests, `INSERT INTO manifests (repository_id, digest, media_type, artifact_type, content, subject, annotations, created_at)
			SELECT r.id, x.digest, m.media_type, m.artifact_type, m.content, m.subject, m.annotations, x.modified
			FROM d_manifests x JOIN s_manifests m USING (digest) JOIN repositories r ON r.name = x.repo ON CONFLICT DO NOTHING`},
		{&c.References, `INSERT INTO manifest_blobs (repository_id, manifest_digest, blob_digest)
			SELECT DISTINCT r.id, x.digest, f.ref FROM d_manifests x JOIN s_refs f ON f.digest = x.digest AND NOT f.child
			JOIN repositories r ON r.name = x.repo ON CONFLICT DO NOTHING`},
		{&c.References, `INSERT INTO manifest_children (repository_id, parent_digest, child_digest)
			SELECT DISTINCT r.id, x.digest, f.ref FROM d_manifests x JOIN s_refs f ON f.digest = x.digest AND f.child
			JOIN repositories r ON r.name = x.repo ON CONFLICT DO NOTHING`},
		{&c.Tags, `INSERT INTO tags (repository_id, name, manifest_digest, updated_at)
			SELECT r.id, x.tag, x.digest, x.modified FROM d_tags x JOIN repositories r ON r.name = x.repo ON CONFLICT DO NOTHING`},
	}
}
