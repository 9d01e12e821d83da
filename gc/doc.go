// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package gc is online garbage collection: registry gc, and the periodic
// passes of registry serve --gc-interval. It runs while every replica
// serves pushes and pulls, and never removes what a push that succeeded
// needs.
//
// # A pass
//
// [Run] makes one pass. It holds [LockKey] (a session advisory lock in
// pglock.NamespaceJobs, taken without waiting: a second runner anywhere
// in the cluster skips and says so) and, shared, the lock of registry
// rebuild-db, which rewrites the index from the bucket and must not run
// at the same time. Its stages, in this order:
//
//  1. With --delete-untagged, manifests no tag reaches. A tag reaches its
//     manifest, an index reaches the manifests it lists, and a manifest
//     reaches its referrers (the manifests whose subject it is), to any
//     depth. So a child of a kept index and a referrer of a kept subject
//     stay, and a referrer whose subject is gone goes.
//  2. Blob links (a repository's _layers link and repository_blobs row)
//     that no manifest of the repository references.
//  3. Blobs (data object and blobs row) that no repository links and no
//     manifest is.
//  4. Upload sessions idle for longer than the upload TTL: their S3
//     multipart upload is aborted, their staged bytes and row deleted.
//  5. S3 multipart uploads older than the upload TTL that no session owns
//     (left by replicas killed mid-request, or by sessions already gone).
//     A request that carries a whole blob under its digest writes at the
//     blob's address with no session, so the TTL must exceed the longest
//     single push.
//  6. Bucket objects of the layout that the index does not know (left by
//     pushes that failed between their S3 writes and their commit, by a
//     deletion whose object delete failed, or by tag history links whose
//     manifest is gone), except what the bucket's own tags reach: that is
//     adopted into the index first (see below).
//
// Each stage reads the index as the earlier ones left it, so one pass
// with no grace removes a deleted image down to its blobs. Keys the
// layout does not know are left alone.
//
// # The bucket is the source of truth
//
// A failover to an asynchronous standby loses the last commits; the
// bucket keeps what they pushed. Before stage 6 deletes, it runs
// [rebuild.Adopt] for the repositories that own candidates (for a blob's
// data, those whose links in the listing name it): rebuild-db's code,
// limited to those repositories and to what their tags reach, indexes
// what it can, and every object a tag reaches stays a candidate no more.
//
// And a pass first compares the database's history with the one recorded
// in index_lineage ([rebuild.CheckLineage]). Once the system identifier
// or the timeline changed, or the WAL position went back, passes skip
// stages 1-3 and 6, which decide by the index, until rebuild-db has
// completed on the new history: they log the reason at error level and
// set registry_gc_rebuild_required.
//
// # Mark and sweep with a grace period
//
// A pass records in gc_unreferenced when it first found a manifest
// unreachable or a blob link unreferenced, and in gc_unknown_objects when
// it first listed a bucket object the index did not know. Such a thing
// is removed only once the grace period (default 24h) has passed since
// both its creation and that mark, and, for bucket objects, only by a
// later pass than the one that marked it. A pass that finds it referenced
// again forgets the mark. The grace protects clients, not data: a client
// that found a blob by HEAD, or pushed an index's children a moment ago,
// has a day to push the manifest that needs them. Safety does not rest on
// it; it rests on what follows, which holds with a grace of zero.
//
// # Why a push never loses a blob
//
// The invariant: a manifest whose PUT returned 201 has every blob and
// child it names, in the index and in the bucket, until it is deleted.
//
// References are enforced by the database. Manifest references point at
// the repository's blob links and child manifests with ON DELETE
// RESTRICT foreign keys, links and manifests at blob rows likewise. A
// manifest PUT locks the links and children it names FOR SHARE before it
// writes anything, and fails with MANIFEST_BLOB_UNKNOWN when one is
// missing. A pass deletes rows with the re-check inside the deleting
// statement (still unreferenced, still old enough), so either:
//
//   - the deletion commits first: the PUT's FOR SHARE finds no row and
//     answers MANIFEST_BLOB_UNKNOWN (a client that HEADed the blob before
//     pushes it again); or
//   - the PUT locks first: the deletion waits for it, and once the PUT has
//     committed its references the foreign key refuses the deletion. The
//     pass then redoes the batch one row at a time and keeps that row.
//
// There is no third order: the row lock serializes the two. Because the
// PUT and the batch delete take their row locks in different orders, they
// can also wait on each other; the pass's deleting transactions wait for
// a row lock at most 200 ms, below PostgreSQL's deadlock_timeout, so it is
// always the pass that gives way, never the push (see removeRows).
//
// Objects follow their rows. A blob's data, its links and a manifest's
// revision link are created, and their rows inserted, only under the
// digest's advisory lock (pglock.NamespaceDigest, taken by a blob commit,
// a mount, a manifest PUT for its own bytes, and a blob link deletion); a
// tag's links under the tag's. A pass deletes a batch like this:
//
//  1. take the batch's digest locks as session locks on its own
//     connection, without waiting (a candidate whose lock a request holds
//     stays for a later pass, and a pass never waits on a push);
//  2. in a transaction, delete the rows that the re-check still selects,
//     and commit: the database row goes before the object;
//  3. delete the objects of those rows;
//  4. release the locks.
//
// An upload committing the same digest meanwhile waits for the lock. It
// then finds no row, and no object either, and writes its own bytes. This
// is what makes deleting the object under the lock necessary: a commit
// that finds the bytes at their address without a row adopts them (that
// is how a retry recovers a commit that died after its S3 writes), so an
// object deleted after the lock was released could vanish under a blob
// that had just been committed and linked, and a manifest pushed on it
// would return 201 with a blob missing. The test suite proves this by
// racing such an upload against a deletion held at step 3.
//
// If the pass dies after step 2, the objects stay without rows: stage 6
// of a later pass deletes them. If it dies before, nothing changed. Its
// session ends with its connection, which releases its locks.
//
// Untagged manifests are deleted the same way under their digest lock,
// which a PUT of the same manifest also takes, so a push that tags it
// again either comes first (the re-check sees the tag) or finds it gone
// and writes it anew. An index pushed over a candidate child holds the
// child FOR SHARE as above.
//
// Unknown bucket objects are deleted only under the lock their writers
// hold, after re-reading the index under it, and only when two passes
// found them unknown: a push writes its objects before it commits its
// rows, and its lock is what keeps a pass from deleting them in between.
// Upload data objects have no lock; they are deleted only when no session
// names them and they are older than the upload TTL.
//
// Abandoned sessions are ended under their row lock, taken with SKIP
// LOCKED: a request streaming into a session holds it, so a pass never
// aborts an upload in progress, and a request that comes after finds no
// session. Multipart uploads whose key names a live session are checked
// under that session's row lock (NOWAIT) too.
//
// # Limits
//
//   - Locks live in PostgreSQL sessions. Should the pass's connection
//     fail while an S3 delete request is already on its way, the server
//     may release the locks before S3 executes the delete; a commit of
//     that very digest in that instant could adopt bytes that then vanish.
//     The window is one S3 request, and only for a blob that was
//     unreferenced for the whole grace period.
//   - A reference made and dropped again between two passes is not seen:
//     the grace then counts from the earlier mark.
//   - An untagged referrer whose subject is pushed again while the pass
//     deletes the referrer can go: it was an orphan for the whole grace.
//   - Dry runs are exact when nothing changes the registry between the
//     dry run and the pass it predicts.
package gc
