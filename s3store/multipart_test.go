// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"errors"
	"testing"
)

func TestMultipartUpload(t *testing.T) {
	s := newStore(t, nil)
	ctx := t.Context()
	key := s.Layout().UploadData("a/b", "upload-1")
	data := randomBytes(10*mib+4321, 4)
	chunks := [][]byte{data[:5*mib], data[5*mib : 10*mib], data[10*mib:]}

	id, err := s.CreateMultipart(ctx, key)
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	// Parts may arrive in any order and be listed unsorted.
	var parts []Part
	for _, i := range []int{2, 0, 1} {
		etag, err := s.UploadPart(ctx, key, id, int32(i+1), chunks[i])
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i+1, err)
		}
		if etag == "" {
			t.Fatalf("UploadPart %d: empty ETag", i+1)
		}
		parts = append(parts, Part{Number: int32(i + 1), ETag: etag, Size: int64(len(chunks[i]))})
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("object visible before completion: %v", err)
	}
	if err := s.CompleteMultipart(ctx, key, id, parts); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	mustEqualBytes(t, "assembled object", mustGet(t, s, key), data)
	if err := s.AbortMultipart(ctx, key, id); err != nil {
		t.Errorf("AbortMultipart after completion: %v", err)
	}
	if err := s.CompleteMultipart(ctx, key, id, nil); err == nil {
		t.Error("CompleteMultipart with no parts succeeded")
	}
}

func TestAbortMultipart(t *testing.T) {
	s := newStore(t, nil)
	ctx := t.Context()
	key := "uploads/aborted"
	id, err := s.CreateMultipart(ctx, key)
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	etag, err := s.UploadPart(ctx, key, id, 1, []byte("some bytes"))
	if err != nil {
		t.Fatalf("UploadPart: %v", err)
	}
	if err := s.AbortMultipart(ctx, key, id); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	if err := s.AbortMultipart(ctx, key, id); err != nil {
		t.Errorf("second AbortMultipart: %v", err)
	}
	if _, err := s.UploadPart(ctx, key, id, 2, []byte("late")); !errors.Is(err, ErrNotFound) {
		t.Errorf("UploadPart after abort: %v, want ErrNotFound", err)
	}
	err = s.CompleteMultipart(ctx, key, id, []Part{{Number: 1, ETag: etag}})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("CompleteMultipart after abort: %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat after abort: %v, want ErrNotFound", err)
	}
}

func TestCopy(t *testing.T) {
	s := newStore(t, nil)
	ctx := t.Context()
	for name, data := range map[string][]byte{
		"small": randomBytes(70_000, 5),
		"empty": {},
	} {
		src, dst := "copy/"+name+"/src", "copy/"+name+"/dst"
		mustPut(t, s, src, data)
		if err := s.Copy(ctx, src, dst, int64(len(data))); err != nil {
			t.Fatalf("%s: Copy: %v", name, err)
		}
		mustEqualBytes(t, name+" copy", mustGet(t, s, dst), data)
		mustEqualBytes(t, name+" source", mustGet(t, s, src), data)
	}
}

func TestCopyMultipart(t *testing.T) {
	s := newStore(t, func(c *Config) {
		c.CopyThreshold = 5 * mib
		c.CopyPartSize = 5 * mib
		c.CopyConcurrency = 2
	})
	ctx := t.Context()
	data := randomBytes(12*mib+77, 6)
	src := s.Layout().UploadData("r", "u")
	dst := s.Layout().BlobData(dgst)
	if err := s.PutBytes(ctx, src, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Copy(ctx, src, dst, int64(len(data))); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	mustEqualBytes(t, "multipart copy", mustGet(t, s, dst), data)

	// A size larger than the source makes a part's range unsatisfiable;
	// the copy must fail and leave no object behind.
	dst2 := "copy/too-long"
	if err := s.Copy(ctx, src, dst2, int64(len(data))+6*mib); err == nil {
		t.Error("Copy with a wrong size succeeded")
	}
	if _, err := s.Stat(ctx, dst2); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat of failed copy: %v, want ErrNotFound", err)
	}
}

func TestCopyPartSize(t *testing.T) {
	s := &Store{cfg: Config{CopyPartSize: DefaultCopyPartSize}}
	for _, size := range []int64{6 << 30, 100 << 30, 1 << 40, 5 << 40} {
		part := s.copyPartSize(size)
		if part < DefaultCopyPartSize {
			t.Errorf("size %d: part %d below the configured size", size, part)
		}
		if parts := (size + part - 1) / part; parts > maxParts {
			t.Errorf("size %d: %d parts of %d, over S3's limit", size, parts, part)
		}
	}
	if got := s.copyPartSize(6 << 30); got != DefaultCopyPartSize {
		t.Errorf("6 GiB: part %d, want the configured %d", got, DefaultCopyPartSize)
	}
}
