// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Command registry is ha-registry's one binary: an OCI distribution
// registry whose stateless replicas serve from S3 with a PostgreSQL index.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "registry:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:                 "registry",
		Usage:                "a highly available OCI distribution registry on S3 and PostgreSQL",
		Version:              version,
		Flags:                logFlags(),
		EnableBashCompletion: true,
		Commands: []*cli.Command{
			serveCommand(),
			migrateCommand(),
			rebuildCommand(),
			gcCommand(),
			quotaCommand(),
			retentionCommand(),
			auditCommand(),
			proxyCommand(),
			scanCommand(),
			versionCommand(),
		},
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(c *cli.Context) error {
			fmt.Fprintln(c.App.Writer, version)
			return nil
		},
	}
}
