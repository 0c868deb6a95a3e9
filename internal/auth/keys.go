package auth

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// pemType is the PEM block type of a PKCS#8 private key, the only kind ParseKeys accepts.
const pemType = "PRIVATE KEY"

// maxKeyIDLen bounds a key id, ours (16 hex chars) or an operator's own.
const maxKeyIDLen = 64

// Key is one Ed25519 signing key and the id ("kid") that names it in token headers.
type Key struct {
	ID      string
	Private ed25519.PrivateKey
}

// GenerateKey makes a new key from crypto/rand, named by KeyID.
func GenerateKey() (Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return Key{ID: KeyID(pub), Private: priv}, nil
}

// KeyID derives a key's id from its public half (the first 16 hex chars of its SHA-256), so the
// same key always gets the same id on every replica without anyone having to name it.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// ParseKeys reads one or more PKCS#8 Ed25519 private keys from PEM ("-----BEGIN PRIVATE KEY-----"),
// as written by MarshalKey or `openssl genpkey -algorithm ed25519`. The first key signs new tokens;
// all of them verify, which is how keys rotate.
func ParseKeys(pemData []byte) ([]Key, error) {
	var keys []Key
	seen := make(map[string]bool)
	rest := pemData
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != pemType {
			return nil, fmt.Errorf("pem block %d: type %q is not supported: want %q holding a PKCS#8 Ed25519 key (openssl genpkey -algorithm ed25519)", n, truncate(block.Type, 40), pemType)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pem block %d: parse PKCS#8 private key: %w", n, err)
		}
		priv, ok := parsed.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("pem block %d: %s keys are not supported: want Ed25519", n, keyKind(parsed))
		}
		k := Key{ID: KeyID(priv.Public().(ed25519.PublicKey)), Private: priv}
		if seen[k.ID] {
			return nil, fmt.Errorf("pem block %d: key %s appears twice", n, k.ID)
		}
		seen[k.ID] = true
		keys = append(keys, k)
	}
	// pem.Decode silently skips a block it cannot read (a missing END line, bad base64); an
	// operator who pasted two keys and got one must hear about it.
	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("pem block %d: malformed PEM (truncated or corrupt block)", len(keys)+1)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM \"PRIVATE KEY\" blocks found: want at least one PKCS#8 Ed25519 key")
	}
	return keys, nil
}

// MarshalKey encodes k's private key as a PKCS#8 PEM block, the format ParseKeys reads.
func MarshalKey(k Key) ([]byte, error) {
	if len(k.Private) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("marshal key %q: not an Ed25519 private key (%d bytes)", k.ID, len(k.Private))
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("marshal key %q: %w", k.ID, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), nil
}

// keyKind names the algorithm of a parsed PKCS#8 key for error messages.
func keyKind(k any) string {
	switch k.(type) {
	case *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PrivateKey:
		return "ECDSA"
	case *ecdh.PrivateKey:
		return "X25519"
	default:
		return fmt.Sprintf("%T", k)
	}
}

// validKeyID reports whether id is a sane key id: 1 to 64 characters from [A-Za-z0-9_-].
// A kid that fails this is refused before any lookup, so hostile ids (path-like, huge, binary)
// reach nothing but this loop.
func validKeyID(id string) bool {
	if id == "" || len(id) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
