// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package testenv

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestPostgresGivesFreshDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := Postgres(t), Postgres(t)
	if a == b {
		t.Fatalf("two calls gave the same database %s", a)
	}
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
		t.Fatal(err)
	}
	conn2, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(ctx)
	var n int
	if err := conn2.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 't'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("second database is not empty: %d tables named t (err %v)", n, err)
	}
}

func TestS3GivesFreshBuckets(t *testing.T) {
	ctx := context.Background()
	cfg := S3(t)
	c := client(cfg)
	key, body := "a/b", "hello"
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &cfg.Bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &cfg.Bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != body {
		t.Fatalf("read %q, wrote %q", got, body)
	}
	other := S3(t)
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &other.Bucket})
	if err != nil || len(list.Contents) != 0 {
		t.Fatalf("second bucket is not empty (%d objects, err %v)", len(list.Contents), err)
	}
}

func TestToolFindsGo(t *testing.T) {
	if p := Tool(t, "go"); p == "" {
		t.Fatal("Tool did not find go")
	}
}
