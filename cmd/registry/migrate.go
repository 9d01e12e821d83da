// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/internal/schema"
)

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "apply the database schema migrations this binary carries",
		Flags: databaseFlags(),
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			pool, err := openDatabase(c.Context, c)
			if err != nil {
				return err
			}
			defer pool.Close()
			applied, err := schema.Migrate(c.Context, pool)
			if err != nil {
				return err
			}
			log.Info().Ints("applied", applied).Int("version", schema.Latest()).Msg("database schema is up to date")
			return nil
		},
	}
}
