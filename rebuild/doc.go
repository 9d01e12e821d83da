// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package rebuild reconstructs the metadata index from the bucket, which is
// the source of truth: registry rebuild-db. It serves disaster recovery (an
// empty database after the old one was lost), adoption of a bucket written
// by CNCF distribution, and checking a live index for drift.
//
// A run holds [LockKey] exclusively, walks the bucket in parallel ([walker]
// in walk.go), reads every manifest once and every tag link, and streams
// what it finds into temporary tables of its own connection (stage.go).
// From those it derives what the index should hold by the rules a push
// follows (desired.go), reporting and leaving out damaged content, then
// compares that with the index (drift.go) and, as its [Mode] says, only
// reports, fills the index (apply.go), or also deletes rows whose objects
// are gone (repair.go). It never writes to the bucket.
//
// [Adopt] runs the same code for a few repositories, for garbage
// collection (adopt.go). A completed run records the database's history
// in index_lineage, which garbage collection checks ([CheckLineage],
// lineage.go): after a failover it deletes nothing by the index until a
// run has completed on the new history.
package rebuild
