// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

const (
	testIssuer   = "ha-registry"
	testAudience = "registry.example"
)

// testNow is the fixed time every test issues and verifies at.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var pullAlpine = []Access{{Type: "repository", Name: "library/alpine", Actions: []string{"pull"}}}

// rsaKey returns one of two 2048-bit keys, generated once because that is slow.
func rsaKey(t *testing.T, i int) *rsa.PrivateKey {
	t.Helper()
	keys, err := rsaKeys()
	if err != nil {
		t.Fatal(err)
	}
	return keys[i]
}

var rsaKeys = sync.OnceValues(func() ([2]*rsa.PrivateKey, error) {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return keys, err
		}
		keys[i] = k
	}
	return keys, nil
})

func ed25519Key(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecdsaKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustIssuer(t *testing.T, name string, key crypto.Signer) *Issuer {
	t.Helper()
	i, err := NewIssuer(name, key, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func mustVerifier(t *testing.T, trusted ...TrustedIssuer) *Verifier {
	t.Helper()
	v, err := NewVerifier(trusted...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustIssue(t *testing.T, i *Issuer, audience string, now time.Time) string {
	t.Helper()
	token, _, err := i.Issue("alice", audience, pullAlpine, now)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// claimsAt are valid claims of alice issued at now, for hand-signed tokens.
func claimsAt(iss string, now time.Time) *Claims {
	return &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    iss,
			Subject:   "alice",
			Audience:  jwt.ClaimStrings{testAudience},
			ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
		},
		Access: pullAlpine,
	}
}

// mustSign signs claims by hand, to build tokens an Issuer would not.
func mustSign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustKeyID(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	kid, err := KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestIssueVerify(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  string
	}{
		{"ed25519", ed25519Key(t), "EdDSA"},
		{"P-256", ecdsaKey(t, elliptic.P256()), "ES256"},
		{"P-384", ecdsaKey(t, elliptic.P384()), "ES384"},
		{"RSA", rsaKey(t, 0), "RS256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss := mustIssuer(t, testIssuer, tc.key)
			token, expiresIn, err := iss.Issue("alice", testAudience, pullAlpine, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if expiresIn != 5*time.Minute {
				t.Errorf("expiresIn = %v, want 5m", expiresIn)
			}
			parsed, _, err := jwt.NewParser().ParseUnverified(token, &Claims{})
			if err != nil {
				t.Fatal(err)
			}
			if got := parsed.Header["alg"]; got != tc.alg {
				t.Errorf("alg = %v, want %s", got, tc.alg)
			}
			if got, want := parsed.Header["kid"], mustKeyID(t, tc.key.Public()); got != want {
				t.Errorf("kid = %v, want %s", got, want)
			}

			got, err := mustVerifier(t, iss.Trusted(testAudience)).Verify(token, testNow.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got.ID) {
				t.Errorf("jti = %q, want 16 random bytes in hex", got.ID)
			}
			want := claimsAt(testIssuer, testNow)
			want.ID = got.ID
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIssueAnonymous(t *testing.T) {
	iss := mustIssuer(t, testIssuer, ed25519Key(t))
	a, _, err := iss.Issue("", testAudience, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	b := mustIssue(t, iss, testAudience, testNow)
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(a, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(payload), `"access":[]`) || strings.Contains(string(payload), `"sub"`) {
		t.Errorf("payload = %s, want an empty access list and no sub", payload)
	}
	v := mustVerifier(t, iss.Trusted(testAudience))
	ca, errA := v.Verify(a, testNow)
	cb, errB := v.Verify(b, testNow)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if ca.ID == cb.ID {
		t.Errorf("two tokens share jti %s", ca.ID)
	}
}

func TestAllows(t *testing.T) {
	c := &Claims{Access: []Access{
		{Type: "repository", Name: "library/alpine", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "team/app", Actions: []string{"*"}},
		{Type: "registry", Name: "catalog", Actions: []string{"*"}},
	}}
	for _, tc := range []struct {
		typ, name, action string
		want              bool
	}{
		{"repository", "library/alpine", "pull", true},
		{"repository", "library/alpine", "push", true},
		{"repository", "library/alpine", "delete", false},
		{"repository", "team/app", "delete", true},
		{"registry", "catalog", "pull", true},
		{"registry", "library/alpine", "pull", false}, // wrong type
		{"repository", "catalog", "pull", false},      // wrong type
		{"repository", "library/alpine2", "pull", false},
		{"repository", "library", "pull", false},
		{"repository", "team/app", "", false},
	} {
		if got := c.Allows(tc.typ, tc.name, tc.action); got != tc.want {
			t.Errorf("Allows(%q, %q, %q) = %v, want %v", tc.typ, tc.name, tc.action, got, tc.want)
		}
	}
	if (*Claims)(nil).Allows("repository", "library/alpine", "pull") {
		t.Error("nil claims allow")
	}
}

func TestVerify(t *testing.T) {
	key := rsaKey(t, 0)
	iss := mustIssuer(t, testIssuer, key)
	v := mustVerifier(t, iss.Trusted(testAudience))
	good := mustIssue(t, iss, testAudience, testNow)
	parts := strings.Split(good, ".")
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	kid := mustKeyID(t, key.Public())
	at := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(testNow.Add(d)) }
	with := func(edit func(c *Claims)) *Claims {
		c := claimsAt(testIssuer, testNow)
		edit(c)
		return c
	}
	// signed signs claims of testIssuer, edited, by hand.
	signed := func(method jwt.SigningMethod, key any, kid string, edit func(c *Claims)) string {
		return mustSign(t, method, key, with(edit), kid)
	}
	same := func(*Claims) {}
	// tampered changes a claim of good and keeps its signature.
	tampered := func(edit func(c *Claims)) string {
		return parts[0] + "." + segment(t, with(edit)) + "." + parts[2]
	}

	// Two issuers, each with its own audience.
	edA, ecB := ed25519Key(t), ecdsaKey(t, elliptic.P256())
	a, b := mustIssuer(t, "a", edA), mustIssuer(t, "b", ecB)
	two := mustVerifier(t, a.Trusted("svc-a"), b.Trusted("svc-b"))
	// One issuer with several keys, selected by kid or alg.
	k1, k2, k3 := ed25519Key(t), ed25519Key(t), ed25519Key(t)
	several := mustVerifier(t, TrustedIssuer{Issuer: testIssuer, Audience: testAudience,
		Keys: []crypto.PublicKey{k1.Public(), k2.Public(), k3.Public(), key.Public()}})

	for _, tc := range []struct {
		name  string
		v     *Verifier // v when nil
		token string
		// reason is what the refusal says; "" when the token is accepted.
		reason string
	}{
		{"good", nil, good, ""},
		{"expired", nil, mustIssue(t, iss, testAudience, testNow.Add(-6*time.Minute)), "token is expired"},
		{"expired 29s ago, within leeway", nil, signed(jwt.SigningMethodRS256, key, "", func(c *Claims) { c.ExpiresAt = at(-29 * time.Second) }), ""},
		{"expired 31s ago", nil, signed(jwt.SigningMethodRS256, key, "", func(c *Claims) { c.ExpiresAt = at(-31 * time.Second) }), "token is expired"},
		{"valid in 29s, within leeway", nil, signed(jwt.SigningMethodRS256, key, "", func(c *Claims) { c.NotBefore = at(29 * time.Second) }), ""},
		{"valid in 31s", nil, signed(jwt.SigningMethodRS256, key, "", func(c *Claims) { c.NotBefore = at(31 * time.Second) }), "token is not valid yet"},
		{"issued in 29s, within leeway", nil, signed(jwt.SigningMethodRS256, key, "", func(c *Claims) { c.IssuedAt = at(29 * time.Second) }), ""},
		{"issued in 31s", nil, signed(jwt.SigningMethodRS256, key, "", func(c *Claims) { c.IssuedAt = at(31 * time.Second) }), "token used before issued"},
		{"no exp", nil, signed(jwt.SigningMethodRS256, key, "", func(c *Claims) { c.ExpiresAt = nil }), "exp claim is required"},
		{"wrong audience", nil, mustIssue(t, iss, "other.example", testNow), "token has invalid audience"},
		{"no audience", nil, signed(jwt.SigningMethodRS256, key, "", func(c *Claims) { c.Audience = nil }), "aud claim is required"},
		{"untrusted issuer", nil, mustIssue(t, mustIssuer(t, "evil", key), testAudience, testNow), `issuer "evil" is not trusted`},
		{"no issuer", nil, signed(jwt.SigningMethodRS256, key, "", func(c *Claims) { c.Issuer = "" }), "no iss claim"},
		{"forged", nil, mustIssue(t, mustIssuer(t, testIssuer, rsaKey(t, 1)), testAudience, testNow), "signature is invalid"},
		{"forged with the trusted kid", nil, signed(jwt.SigningMethodRS256, rsaKey(t, 1), kid, same), "signature is invalid"},
		{"key of another type", nil, mustIssue(t, mustIssuer(t, testIssuer, ecdsaKey(t, elliptic.P256())), testAudience, testNow), "signing method ES256 is invalid"},
		{"alg none", nil, segment(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." + parts[1] + ".", "signing method none is invalid"},
		{"HS256 keyed with the PEM public key", nil, signed(jwt.SigningMethodHS256, pubPEM, "", same), "signing method HS256 is invalid"},
		{"HS256 keyed with the DER public key", nil, signed(jwt.SigningMethodHS256, pubDER, kid, same), "signing method HS256 is invalid"},
		{"tampered subject", nil, tampered(func(c *Claims) { c.Subject = "admin" }), "signature is invalid"},
		{"tampered access", nil, tampered(func(c *Claims) {
			c.Access = []Access{{Type: "repository", Name: "library/alpine", Actions: []string{"*"}}}
		}), "signature is invalid"},
		{"signature stripped", nil, parts[0] + "." + parts[1] + ".", "signature is invalid"},
		{"empty", nil, "", "malformed"},
		{"garbage", nil, "not a token", "malformed"},
		{"dots", nil, "..", "malformed"},
		{"four segments", nil, good + ".x", "malformed"},
		{"header not base64", nil, "!!!." + parts[1] + "." + parts[2], "malformed"},
		{"payload not JSON", nil, parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("{nope")) + "." + parts[2], "malformed"},
		{"exp not a number", nil, parts[0] + "." + segment(t, map[string]any{"iss": testIssuer, "exp": "soon"}) + "." + parts[2], "malformed"},

		{"issuer a", two, mustIssue(t, a, "svc-a", testNow), ""},
		{"issuer b", two, mustIssue(t, b, "svc-b", testNow), ""},
		{"a signed by b's key", two, mustIssue(t, mustIssuer(t, "a", ecB), "svc-a", testNow), "signing method ES256 is invalid"},
		{"b signed by a's key", two, mustIssue(t, mustIssuer(t, "b", edA), "svc-b", testNow), "signing method EdDSA is invalid"},
		{"a for b's audience", two, mustIssue(t, a, "svc-b", testNow), "token has invalid audience"},

		{"kid of the signing key", several, mustIssue(t, mustIssuer(t, testIssuer, k2), testAudience, testNow), ""},
		{"no kid: every key tried", several, signed(jwt.SigningMethodEdDSA, k3, "", same), ""},
		{"unknown kid: every key tried", several, signed(jwt.SigningMethodEdDSA, k3, "AAAA:BBBB", same), ""},
		{"RSA key among ed25519 keys", several, signed(jwt.SigningMethodRS256, key, "", same), ""},
		{"RSA-PSS", several, signed(jwt.SigningMethodPS256, key, "", same), ""},
		{"kid of another key: only that key tried", several, signed(jwt.SigningMethodEdDSA, k2, mustKeyID(t, k1.Public()), same), "signature is invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.v == nil {
				tc.v = v
			}
			claims, err := tc.v.Verify(tc.token, testNow)
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if claims.Subject != "alice" || !claims.Allows("repository", "library/alpine", "pull") {
					t.Errorf("claims = %+v, want alice's", claims)
				}
				return
			}
			if claims != nil {
				t.Errorf("claims = %+v, want none", claims)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("err = %q, want it to say %q", err, tc.reason)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("err quotes the token: %q", err)
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	// The golden id was computed with openssl and coreutils, not this code:
	// openssl pkey -pubout -outform DER | sha256sum | first 30 bytes | base32.
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	golden := ed25519.NewKeyFromSeed(seed).Public()
	if got, want := mustKeyID(t, golden), "UBII:G7MF:A4CY:FTHX:HFFQ:TCEE:PTBR:FS4I:EWNY:SSEZ:63ZD:TTYX"; got != want {
		t.Errorf("KeyID = %s, want %s", got, want)
	}
	format := regexp.MustCompile(`^[A-Z2-7]{4}(:[A-Z2-7]{4}){11}$`)
	seen := map[string]bool{}
	for _, pub := range []crypto.PublicKey{ed25519Key(t).Public(), ecdsaKey(t, elliptic.P256()).Public(), rsaKey(t, 0).Public()} {
		kid := mustKeyID(t, pub)
		if !format.MatchString(kid) {
			t.Errorf("KeyID = %q, want 12 groups of 4 base32 characters", kid)
		}
		if again := mustKeyID(t, pub); again != kid {
			t.Errorf("KeyID not stable: %s then %s", kid, again)
		}
		if seen[kid] {
			t.Errorf("KeyID %s for two keys", kid)
		}
		seen[kid] = true
	}
	if _, err := KeyID([]byte("secret")); err == nil {
		t.Error("KeyID of an HMAC secret: no error")
	}
}

// opaqueSigner is a crypto.Signer of a type the jwt library cannot sign with.
type opaqueSigner struct{ crypto.Signer }

func TestConstructorsRefuse(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ed, p224 := ed25519Key(t), ecdsaKey(t, elliptic.P224())
	issuer := func(name string, key crypto.Signer, lifetime time.Duration) error {
		_, err := NewIssuer(name, key, lifetime)
		return err
	}
	verifier := func(trusted ...TrustedIssuer) error {
		_, err := NewVerifier(trusted...)
		return err
	}
	trusted := func(iss, aud string, keys ...crypto.PublicKey) TrustedIssuer {
		return TrustedIssuer{Issuer: iss, Audience: aud, Keys: keys}
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"issuer: empty name", issuer("", ed, time.Minute)},
		{"issuer: zero lifetime", issuer(testIssuer, ed, 0)},
		{"issuer: negative lifetime", issuer(testIssuer, ed, -time.Minute)},
		{"issuer: no key", issuer(testIssuer, nil, time.Minute)},
		{"issuer: RSA 1024", issuer(testIssuer, small, time.Minute)},
		{"issuer: P-224", issuer(testIssuer, p224, time.Minute)},
		{"issuer: opaque signer", issuer(testIssuer, opaqueSigner{ed}, time.Minute)},
		{"verifier: no issuers", verifier()},
		{"verifier: no keys", verifier(trusted(testIssuer, testAudience))},
		{"verifier: no audience", verifier(trusted(testIssuer, "", ed.Public()))},
		{"verifier: no issuer", verifier(trusted("", testAudience, ed.Public()))},
		{"verifier: issuer twice", verifier(trusted(testIssuer, testAudience, ed.Public()), trusted(testIssuer, "other", ed.Public()))},
		{"verifier: HMAC secret", verifier(trusted(testIssuer, testAudience, []byte("secret")))},
		{"verifier: RSA 1024", verifier(trusted(testIssuer, testAudience, small.Public()))},
		{"verifier: P-224", verifier(trusted(testIssuer, testAudience, p224.Public()))},
		{"verifier: private key", verifier(trusted(testIssuer, testAudience, rsaKey(t, 0)))},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func pemBlock(t *testing.T, typ string, der []byte, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	return pemBlock(t, "PRIVATE KEY", der, err)
}

func pkixPEM(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	return pemBlock(t, "PUBLIC KEY", der, err)
}

func selfSigned(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "token signer"},
		NotBefore:    testNow,
		NotAfter:     testNow.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	return pemBlock(t, "CERTIFICATE", der, err)
}

func TestParsePEM(t *testing.T) {
	ed, ec, r := ed25519Key(t), ecdsaKey(t, elliptic.P256()), rsaKey(t, 0)
	sec1, err := x509.MarshalECPrivateKey(ec)
	ecPEM := pemBlock(t, "EC PRIVATE KEY", sec1, err)
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	private := func(b []byte) ([]crypto.PublicKey, error) {
		key, err := ParsePrivateKey(b)
		if err != nil {
			return nil, err
		}
		// The key must be one an Issuer signs with, not just any signer.
		if _, err := NewIssuer(testIssuer, key, time.Minute); err != nil {
			return nil, err
		}
		return []crypto.PublicKey{key.Public()}, nil
	}
	keys := func(ks ...crypto.Signer) (pubs []crypto.PublicKey) {
		for _, k := range ks {
			pubs = append(pubs, k.Public())
		}
		return pubs
	}
	for _, tc := range []struct {
		name  string
		parse func([]byte) ([]crypto.PublicKey, error)
		pem   []byte
		want  []crypto.PublicKey // nil when refused
	}{
		{"private PKCS#8 ed25519", private, pkcs8(t, ed), keys(ed)},
		{"private PKCS#8 ECDSA", private, pkcs8(t, ec), keys(ec)},
		{"private PKCS#8 RSA", private, pkcs8(t, r), keys(r)},
		{"private SEC 1", private, ecPEM, keys(ec)},
		{"private SEC 1 after EC PARAMETERS", private, append(pemBlock(t, "EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}, nil), ecPEM...), keys(ec)},
		{"private PKCS#1", private, pemBlock(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(r), nil), keys(r)},
		{"private: two keys", private, append(pkcs8(t, ed), ecPEM...), nil},
		{"private: X25519 cannot sign", private, pkcs8(t, x25519), nil},
		{"private: encrypted", private, pemBlock(t, "ENCRYPTED PRIVATE KEY", []byte("x"), nil), nil},
		{"private: public key only", private, pkixPEM(t, ed.Public()), nil},
		{"private: garbled block", private, pemBlock(t, "PRIVATE KEY", []byte("garbage"), nil), nil},
		{"private: garbage", private, []byte("not a key"), nil},
		{"private: empty", private, nil, nil},

		{"public PKIX", ParsePublicKeys, pkixPEM(t, ed.Public()), keys(ed)},
		{"public: several", ParsePublicKeys, append(pkixPEM(t, r.Public()), pkixPEM(t, ec.Public())...), keys(r, ec)},
		{"public certificate", ParsePublicKeys, selfSigned(t, ec), keys(ec)},
		{"public: certificate, private key skipped, PKIX", ParsePublicKeys, append(append(selfSigned(t, r), pkcs8(t, ed)...), pkixPEM(t, ed.Public())...), keys(r, ed)},
		{"public: garbled key", ParsePublicKeys, pemBlock(t, "PUBLIC KEY", []byte("garbage"), nil), nil},
		{"public: garbled certificate", ParsePublicKeys, pemBlock(t, "CERTIFICATE", []byte("garbage"), nil), nil},
		{"public: private key only", ParsePublicKeys, pkcs8(t, ed), nil},
		{"public: garbage", ParsePublicKeys, []byte("not a key"), nil},
		{"public: empty", ParsePublicKeys, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.parse(tc.pem)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("got %d keys, want an error", len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if k, ok := tc.want[i].(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(got[i]) {
					t.Errorf("key %d is another key", i)
				}
			}
		})
	}
}
