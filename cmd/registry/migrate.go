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
		Flags: append(databaseFlags(),
			&cli.StringFlag{Name: "grant-to", EnvVars: []string{"REGISTRY_GRANT_TO"},
				Usage: "after migrating, grant this serving role what serving needs (and on audit_events only INSERT and SELECT); " +
					"pass it on every migrate, since a new table is granted only then"}),
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
			if role := c.String("grant-to"); role != "" {
				if err := schema.Grant(c.Context, pool, role); err != nil {
					return err
				}
				log.Info().Str("role", role).Msg("serving role granted")
			}
			return nil
		},
	}
}
