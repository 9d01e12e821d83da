// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package pglock

import (
	"hash/fnv"
	"testing"
)

// TestKeyIsStable pins keys to values computed outside Key: replicas of
// different versions must derive the same key for one use, or a rolling
// upgrade would let two of them in at once.
func TestKeyIsStable(t *testing.T) {
	for _, c := range []struct {
		ns   Namespace
		name string
		want uint64
	}{
		// FNV-1a of "" is 0xcbf29ce484222325.
		{NamespaceMigrate, "", 0x0001_9ce484222325},
		// FNV-1a of "a" is 0xaf63dc4c8601ec8c.
		{NamespaceDigest, "a", 0x0002_dc4c8601ec8c},
		{NamespaceMigrate, "schema", 0x0001<<48 | fnv1a("schema")&(1<<48-1)},
		{0xffff, "a", 0xffff_dc4c8601ec8c},
	} {
		if got := uint64(Key(c.ns, c.name)); got != c.want {
			t.Errorf("Key(%d, %q) = %#x, want %#x", c.ns, c.name, got, c.want)
		}
	}
}

// fnv1a is FNV-1a written out from its definition, independent of the
// hash/fnv package Key uses.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func TestFNV1aReference(t *testing.T) {
	for _, s := range []string{"", "a", "schema", "sha256:0123"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := fnv1a(s), h.Sum64(); got != want {
			t.Errorf("fnv1a(%q) = %#x, hash/fnv says %#x", s, got, want)
		}
	}
}

// TestNamespacesInUseAreDistinct guards the protocol rule that a
// namespace value is never reused.
func TestNamespacesInUseAreDistinct(t *testing.T) {
	seen := map[Namespace]string{}
	for name, ns := range map[string]Namespace{
		"migrate": NamespaceMigrate, "digest": NamespaceDigest, "jobs": NamespaceJobs,
		"repository": NamespaceRepository, "rebuild": NamespaceRebuild,
		"quota": NamespaceQuota, "proxy": NamespaceProxy, "uploads": NamespaceUploads,
	} {
		if ns == 0 {
			t.Errorf("namespace %s is 0", name)
		}
		if other, ok := seen[ns]; ok {
			t.Errorf("namespaces %s and %s share the value %d", name, other, ns)
		}
		seen[ns] = name
	}
}

// FuzzKey checks the documented layout: the namespace is the top 16 bits,
// so keys of different namespaces differ whatever their names, and one
// input always gives one key.
func FuzzKey(f *testing.F) {
	f.Add(uint16(NamespaceMigrate), uint16(NamespaceDigest), "schema", "schema")
	f.Add(uint16(NamespaceDigest), uint16(NamespaceRepository), "sha256:abc", "library/alpine:latest")
	f.Add(uint16(0), uint16(0xffff), "", "")
	f.Fuzz(func(t *testing.T, ns1, ns2 uint16, a, b string) {
		k1, k2 := Key(Namespace(ns1), a), Key(Namespace(ns2), b)
		if got := uint16(uint64(k1) >> 48); got != ns1 {
			t.Fatalf("Key(%d, %q) = %#x: top 16 bits are %d", ns1, a, uint64(k1), got)
		}
		if got, want := uint64(k1)&(1<<48-1), fnv1a(a)&(1<<48-1); got != want {
			t.Fatalf("Key(%d, %q) low 48 bits = %#x, want FNV-1a %#x", ns1, a, got, want)
		}
		if ns1 != ns2 && k1 == k2 {
			t.Fatalf("Key(%d, %q) == Key(%d, %q) == %#x", ns1, a, ns2, b, k1)
		}
		if Key(Namespace(ns1), a) != k1 {
			t.Fatalf("Key(%d, %q) changed between calls", ns1, a)
		}
		if ns1 == ns2 && a == b && k1 != k2 {
			t.Fatalf("equal inputs gave %#x and %#x", k1, k2)
		}
	})
}
