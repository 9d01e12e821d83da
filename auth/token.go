// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken is the error [Verifier.Verify] wraps for every refused
// token, so that callers answer 401 without matching on reasons.
var ErrInvalidToken = errors.New("invalid token")

// clockSkew is the leeway on exp, nbf and iat: replicas and external token
// servers never agree on the time to the second.
const clockSkew = 30 * time.Second

// minRSABits is the smallest RSA modulus we sign or verify with; smaller keys
// are breakable.
const minRSABits = 2048

// Access is one grant of a token: actions on a resource.
type Access struct {
	Type    string   `json:"type"`    // "repository" or "registry"
	Name    string   `json:"name"`    // repository name, or "catalog"
	Actions []string `json:"actions"` // "pull", "push", "delete", "*"
}

// Claims are a registry token's claims: the registered JWT claims and the
// grants, as https://distribution.github.io/distribution/spec/auth/jwt/
// names them, so that tokens of existing token servers verify here.
type Claims struct {
	jwt.RegisteredClaims
	Access []Access `json:"access"`
}

// Allows reports whether the claims grant action on the resource (typ, name).
// The action "*" in a grant grants every action, as token servers write it for
// administrators.
func (c *Claims) Allows(typ, name, action string) bool {
	if c == nil || action == "" {
		return false
	}
	for _, a := range c.Access {
		if a.Type != typ || a.Name != name {
			continue
		}
		if slices.Contains(a.Actions, action) || slices.Contains(a.Actions, "*") {
			return true
		}
	}
	return false
}

// Issuer signs tokens for the built-in token endpoint.
type Issuer struct {
	name     string
	key      crypto.Signer
	method   jwt.SigningMethod
	kid      string
	lifetime time.Duration
}

// NewIssuer returns an [Issuer] that signs as name (the iss claim) with key,
// for tokens valid for lifetime. The key is an ed25519.PrivateKey (EdDSA), an
// *ecdsa.PrivateKey on P-256 (ES256), P-384 (ES384) or P-521 (ES512), or an
// *rsa.PrivateKey of at least 2048 bits (RS256): the algorithm follows from
// the key so that configuration cannot pair them wrongly.
func NewIssuer(name string, key crypto.Signer, lifetime time.Duration) (*Issuer, error) {
	if name == "" {
		return nil, errors.New("token issuer: empty name")
	}
	if lifetime <= 0 {
		return nil, fmt.Errorf("token issuer: lifetime %v is not positive", lifetime)
	}
	if key == nil {
		return nil, errors.New("token issuer: no key")
	}
	switch key.(type) {
	case ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey:
	default:
		// The jwt signing methods take these concrete types only.
		return nil, fmt.Errorf("token issuer: unsupported key type %T", key)
	}
	algs, err := algorithms(key.Public())
	if err != nil {
		return nil, fmt.Errorf("token issuer: %w", err)
	}
	kid, err := KeyID(key.Public())
	if err != nil {
		return nil, fmt.Errorf("token issuer: %w", err)
	}
	return &Issuer{
		name:     name,
		key:      key,
		method:   jwt.GetSigningMethod(algs[0]),
		kid:      kid,
		lifetime: lifetime,
	}, nil
}

// Issue returns a token for subject ("" for anonymous) granting access,
// valid for audience (the registry's service name) from now for the issuer's
// lifetime, and how long it stays valid. The kid header names the key, so
// that verifiers holding several keys during a rotation try only one.
func (i *Issuer) Issue(subject, audience string, access []Access, now time.Time) (token string, expiresIn time.Duration, err error) {
	if audience == "" {
		return "", 0, errors.New("issue token: empty audience")
	}
	// A random jti lets a token server or an audit log tell tokens apart.
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", 0, fmt.Errorf("issue token: %w", err)
	}
	if access == nil {
		// The specification's access is a list; clients expect [] over null.
		access = []Access{}
	}
	exp := jwt.NewNumericDate(now.Add(i.lifetime))
	claims := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.name,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{audience},
			ExpiresAt: exp,
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        hex.EncodeToString(id[:]),
		},
		Access: access,
	}
	t := jwt.NewWithClaims(i.method, claims)
	t.Header["kid"] = i.kid
	token, err = t.SignedString(i.key)
	if err != nil {
		return "", 0, fmt.Errorf("issue token: %w", err)
	}
	// exp is whole seconds, so the token may end slightly before now+lifetime.
	return token, exp.Sub(now), nil
}

// Trusted returns the [TrustedIssuer] that verifies this issuer's tokens for
// audience, so that the registry trusts its own token endpoint the same way
// it trusts an external one.
func (i *Issuer) Trusted(audience string) TrustedIssuer {
	return TrustedIssuer{
		Issuer:   i.name,
		Audience: audience,
		Keys:     []crypto.PublicKey{i.key.Public()},
	}
}

// TrustedIssuer is an issuer whose tokens the registry accepts.
type TrustedIssuer struct {
	Issuer   string             // the iss a token must carry
	Audience string             // the aud a token must carry (the registry's service name)
	Keys     []crypto.PublicKey // ed25519.PublicKey, *ecdsa.PublicKey, *rsa.PublicKey
}

// Verifier checks tokens against the trusted issuers.
type Verifier struct {
	issuers map[string]*trustedKeys
}

// trustedKeys is a [TrustedIssuer] prepared for verification.
type trustedKeys struct {
	issuer   string
	audience string
	keys     []verificationKey
	methods  []string // every algorithm some key accepts
}

// verificationKey is a public key with what a token header says about it.
type verificationKey struct {
	key  crypto.PublicKey
	kid  string
	algs []string
}

// NewVerifier returns a [Verifier] accepting tokens of the trusted issuers.
// It refuses no issuers, an issuer without name, audience or keys, an issuer
// named twice, and keys it cannot verify safely, so that a configuration
// mistake fails at start instead of letting tokens through.
func NewVerifier(trusted ...TrustedIssuer) (*Verifier, error) {
	if len(trusted) == 0 {
		return nil, errors.New("token verifier: no trusted issuers")
	}
	v := &Verifier{issuers: make(map[string]*trustedKeys, len(trusted))}
	for _, ti := range trusted {
		switch {
		case ti.Issuer == "":
			return nil, errors.New("token verifier: trusted issuer without name")
		case ti.Audience == "":
			return nil, fmt.Errorf("token verifier: issuer %q: no audience", ti.Issuer)
		case len(ti.Keys) == 0:
			return nil, fmt.Errorf("token verifier: issuer %q: no keys", ti.Issuer)
		case v.issuers[ti.Issuer] != nil:
			return nil, fmt.Errorf("token verifier: issuer %q trusted twice", ti.Issuer)
		}
		tk := &trustedKeys{issuer: ti.Issuer, audience: ti.Audience}
		for n, key := range ti.Keys {
			algs, err := algorithms(key)
			if err != nil {
				return nil, fmt.Errorf("token verifier: issuer %q: key %d: %w", ti.Issuer, n, err)
			}
			kid, err := KeyID(key)
			if err != nil {
				return nil, fmt.Errorf("token verifier: issuer %q: key %d: %w", ti.Issuer, n, err)
			}
			tk.keys = append(tk.keys, verificationKey{key: key, kid: kid, algs: algs})
			for _, alg := range algs {
				if !slices.Contains(tk.methods, alg) {
					tk.methods = append(tk.methods, alg)
				}
			}
		}
		v.issuers[ti.Issuer] = tk
	}
	return v, nil
}

// Verify parses token and returns its claims if one of its issuer's keys
// signed it with the algorithm of that key's type (never "none" or HMAC,
// whose secret an attacker could take from a public key), its issuer is
// trusted, its aud contains that issuer's audience, and it is valid at now:
// exp present and after now, nbf and iat not after now, each with 30 seconds
// of leeway for clock skew between replicas. Every refusal is
// [ErrInvalidToken] wrapped with the reason; the error never quotes the token,
// which is a credential.
func (v *Verifier) Verify(token string, now time.Time) (*Claims, error) {
	// The issuer decides keys, algorithms and audience, so read it first; the
	// claims are trusted only after the second, verifying parse.
	var unverified Claims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &unverified); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidToken, truncate(err.Error(), 200))
	}
	if unverified.Issuer == "" {
		return nil, fmt.Errorf("%w: no iss claim", ErrInvalidToken)
	}
	ti := v.issuers[unverified.Issuer]
	if ti == nil {
		return nil, fmt.Errorf("%w: issuer %q is not trusted", ErrInvalidToken, truncate(unverified.Issuer, 64))
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods(ti.methods),
		jwt.WithIssuer(ti.issuer),
		jwt.WithAudience(ti.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(clockSkew),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	claims := &Claims{}
	if _, err := parser.ParseWithClaims(token, claims, ti.keyFor); err != nil {
		// Parse errors may quote a claim's value; keep them short in logs.
		return nil, fmt.Errorf("%w: %s", ErrInvalidToken, truncate(err.Error(), 200))
	}
	return claims, nil
}

// keyFor picks the keys that may have signed t: only keys whose type matches
// the alg header, and of those the one the kid header names if any does.
func (tk *trustedKeys) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	var candidates []jwt.VerificationKey
	kid, _ := t.Header["kid"].(string)
	for _, k := range tk.keys {
		if !slices.Contains(k.algs, alg) {
			continue
		}
		if kid != "" && k.kid == kid {
			return k.key, nil
		}
		candidates = append(candidates, k.key)
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("no key of issuer %q takes algorithm %s", tk.issuer, alg)
	}
	return jwt.VerificationKeySet{Keys: candidates}, nil
}

// algorithms lists the JWS algorithms a public key verifies, the first being
// the one an [Issuer] signs with. Each key type has its own algorithms so
// that no token can make us use a key in another algorithm.
func algorithms(pub crypto.PublicKey) ([]string, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("malformed ed25519 key")
		}
		return []string{"EdDSA"}, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}, nil
		case elliptic.P384():
			return []string{"ES384"}, nil
		case elliptic.P521():
			return []string{"ES512"}, nil
		}
		return nil, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits, need at least %d", k.N.BitLen(), minRSABits)
		}
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", pub)
}

// kidEncoding is base32 without padding, as libtrust writes key ids.
var kidEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// KeyID returns the key's id in token headers, in the docker/distribution
// (libtrust) format: the unpadded base32 of the first 30 bytes of the SHA-256
// of the key's PKIX DER, in 12 groups of 4 characters joined by ":". Using
// their format lets kid headers of existing token servers select our keys.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("key id: %w", err)
	}
	sum := sha256.Sum256(der)
	s := kidEncoding.EncodeToString(sum[:30])
	groups := make([]string, 0, len(s)/4)
	for len(s) > 0 {
		groups = append(groups, s[:4])
		s = s[4:]
	}
	return strings.Join(groups, ":"), nil
}

// ParsePrivateKey reads the private key in pemBytes: a "PRIVATE KEY" (PKCS
// #8), "EC PRIVATE KEY" (SEC 1) or "RSA PRIVATE KEY" (PKCS #1) block. Other
// blocks, such as the "EC PARAMETERS" openssl writes first, are skipped;
// encrypted keys and more than one key are refused.
func ParsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	var signer crypto.Signer
	for rest := pemBytes; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("private key: encrypted keys are not supported")
		default:
			continue
		}
		if _, ok := block.Headers["Proc-Type"]; ok {
			return nil, errors.New("private key: encrypted keys are not supported")
		}
		if err != nil {
			return nil, fmt.Errorf("private key: %s block: %w", block.Type, err)
		}
		if signer != nil {
			return nil, errors.New("private key: more than one key")
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("private key: %T cannot sign", key)
		}
		signer = s
	}
	if signer == nil {
		return nil, errors.New("private key: no PEM private key block")
	}
	return signer, nil
}

// ParsePublicKeys reads the public key of every "PUBLIC KEY" (PKIX) and
// "CERTIFICATE" block in pemBytes, skipping other blocks. Certificates are
// only key containers here, as token servers publish them: their validity
// dates and chains are not checked.
func ParsePublicKeys(pemBytes []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for rest := pemBytes; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "PUBLIC KEY":
			key, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("public key: %w", err)
			}
			keys = append(keys, key)
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("public key: certificate: %w", err)
			}
			keys = append(keys, cert.PublicKey)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("public key: no PEM public key or certificate block")
	}
	return keys, nil
}

// truncate shortens s, which may hold text from a token, for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
