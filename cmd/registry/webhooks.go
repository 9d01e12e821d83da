// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/webhook"
)

// startWebhooks delivers the webhook outbox from this replica until ctx
// ends or the returned function is called, which waits for the round in
// flight. Every replica delivers; each row goes out from one of them.
func startWebhooks(ctx context.Context, pool *pgxpool.Pool, log zerolog.Logger) func() {
	d := &webhook.Deliverer{DB: pool, Log: log}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { d.Run(ctx) })
	return func() { cancel(); wg.Wait() }
}
