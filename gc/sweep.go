// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// What every stage shares: candidates are removed in batches, each under
// the advisory locks of its objects' writers, taken as session locks on
// the pass's connection so that they outlast the transaction deleting the
// rows; the bucket objects are deleted after that transaction committed
// and before the locks are released.

// sweepBatches removes cands batch by batch. For each batch it takes the
// locks lockKey names (a candidate without a lock has ok false) without
// waiting, skipping candidates whose lock a request holds, lets remove
// delete the rows of the rest that still qualify (or, dry, find them),
// deletes the bucket objects of what remove returned, then unlocks. It
// returns what it removed.
func sweepBatches[C any](ctx context.Context, p *pass, stage Kind, cands []C, lockKey func(C) (int64, bool),
	remove func(context.Context, []C) ([]Item, error)) ([]Item, error) {
	var all []Item
	for len(cands) > 0 {
		n := min(len(cands), p.opts.BatchSize)
		batch := cands[:n]
		cands = cands[n:]
		if h := p.opts.hooks.beforeBatch; h != nil {
			h(stage)
		}
		items, err := removeLocked(ctx, p, stage, batch, lockKey, remove)
		all = append(all, items...)
		if err != nil {
			return all, err
		}
		if len(cands) == 0 {
			break
		}
		// After the batch's locks are released.
		if err := p.pace.pause(ctx); err != nil {
			return all, err
		}
	}
	return all, nil
}

// removeLocked is one batch of sweepBatches.
func removeLocked[C any](ctx context.Context, p *pass, stage Kind, batch []C, lockKey func(C) (int64, bool),
	remove func(context.Context, []C) ([]Item, error)) (_ []Item, err error) {
	var keys []int64
	for _, c := range batch {
		if k, ok := lockKey(c); ok {
			keys = append(keys, k)
		}
	}
	held, err := p.tryLocks(ctx, keys)
	if err != nil {
		return nil, err
	}
	defer func() {
		if uerr := p.unlock(ctx, held); err == nil {
			err = uerr
		}
	}()
	var locked []C
	for _, c := range batch {
		if k, ok := lockKey(c); !ok || held[k] {
			locked = append(locked, c)
		}
	}
	items, err := remove(ctx, locked)
	if err != nil || len(items) == 0 {
		return items, err
	}
	if h := p.opts.hooks.beforeObjectDelete; h != nil {
		h(stage)
	}
	if p.opts.DryRun {
		return items, nil
	}
	var objects []string
	for _, it := range items {
		objects = append(objects, it.Objects...)
	}
	// The rows are gone: should this fail, the objects are unknown to the
	// index, and the bucket stage of a later pass deletes them.
	if err := p.s3.DeleteKeys(ctx, objects); err != nil {
		return items, fmt.Errorf("deleting %d bucket objects: %w", len(objects), err)
	}
	return items, nil
}

// tryLocks takes the session locks keys, each once, without waiting, and
// returns those it got. Session locks count: a key taken twice would stay
// held after one unlock, so duplicates are dropped first.
func (p *pass) tryLocks(ctx context.Context, keys []int64) (map[int64]bool, error) {
	slices.Sort(keys)
	keys = slices.Compact(keys)
	rows, err := p.conn.Query(ctx, `SELECT k, pg_try_advisory_lock(k) FROM unnest($1::bigint[]) AS k`, keys)
	if err != nil {
		return nil, fmt.Errorf("taking locks: %w", err)
	}
	held := make(map[int64]bool, len(keys))
	var k int64
	var ok bool
	_, err = pgx.ForEachRow(rows, []any{&k, &ok}, func() error {
		if ok {
			held[k] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("taking locks: %w", err)
	}
	return held, nil
}

// unlock releases session locks tryLocks took. It runs even when ctx is
// done; if it fails, the pass fails and closing its connection releases
// them.
func (p *pass) unlock(ctx context.Context, held map[int64]bool) error {
	if len(held) == 0 {
		return nil
	}
	keys := make([]int64, 0, len(held))
	for k := range held {
		keys = append(keys, k)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := p.conn.Exec(ctx, `SELECT pg_advisory_unlock(k) FROM unnest($1::bigint[]) AS k`, keys); err != nil {
		return fmt.Errorf("releasing locks: %w", err)
	}
	return nil
}

// rowRemoval is how a stage removes index rows: the rows of table that
// where selects. where is the re-check, evaluated in the deleting
// statement itself, so that a row referenced again since the candidates
// were chosen stays; args builds its parameters for some candidates.
type rowRemoval[C, R any] struct {
	table, where, returning string
	args                    func([]C) []any
	scan                    func(pgx.CollectableRow) (R, error)
}

// removeRows deletes, in one transaction, the rows of cands that still
// qualify and returns them; dry, it only selects them. A foreign key that
// refuses a deletion (a push referenced the row after the re-check read
// the index, and committed first) costs the batch its transaction: it is
// then done again one row at a time, each in a savepoint, and the refused
// rows stay.
//
// The pass is always the one to give way. A manifest PUT locks the rows
// it names FOR SHARE in its own order while the batch delete locks them
// in another, so the two can wait on each other; PostgreSQL would then
// abort whichever noticed first, possibly the push. The deleting
// transactions wait at most [rowLockTimeout] for a row, well below
// PostgreSQL's deadlock_timeout (1 s by default), so the pass gives up
// first: the batch is redone row by row, and a row still locked stays
// for a later pass.
func removeRows[C, R any](ctx context.Context, p *pass, q rowRemoval[C, R], cands []C) ([]R, error) {
	if len(cands) == 0 {
		return nil, nil
	}
	if p.opts.DryRun {
		rows, err := p.conn.Query(ctx, "SELECT "+q.returning+" FROM "+q.table+" WHERE "+q.where, q.args(cands)...)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, q.scan)
	}
	del := "DELETE FROM " + q.table + " WHERE " + q.where + " RETURNING " + q.returning
	var out []R
	err := pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
		if err := yieldToPushes(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, del, q.args(cands)...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, q.scan)
		return err
	})
	if !raced(err) {
		return out, err
	}
	out = nil
	err = pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
		if err := yieldToPushes(ctx, tx); err != nil {
			return err
		}
		for i := range cands {
			var got []R
			err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
				rows, err := sp.Query(ctx, del, q.args(cands[i:i+1])...)
				if err != nil {
					return err
				}
				got, err = pgx.CollectRows(rows, q.scan)
				return err
			})
			switch {
			case raced(err):
			case err != nil:
				return err
			default:
				out = append(out, got...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// rowLockTimeout is how long a deleting transaction of a pass waits for a
// row a push holds (see removeRows).
const rowLockTimeout = 200 * time.Millisecond

// yieldToPushes bounds tx's waits for row locks by rowLockTimeout.
func yieldToPushes(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", rowLockTimeout.Milliseconds()))
	return err
}

// raced reports a deletion that a push got in the way of: a foreign key
// refusing it (23503), a row lock not granted in time (55P03), or, should
// PostgreSQL still pick the pass in a deadlock, that (40P01).
func raced(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "23503", "55P03", "40P01":
		return true
	}
	return false
}
