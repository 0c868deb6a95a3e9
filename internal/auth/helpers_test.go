package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	clocktesting "k8s.io/utils/clock/testing"
)

// testNow is the fake present. It is far from the real clock on purpose: a check that silently
// used time.Now instead of the injected clock would get every expiry case wrong.
var testNow = time.Date(2040, time.March, 4, 5, 6, 7, 0, time.UTC)

// testKey returns a deterministic key, so the tokens tests sign by hand are the same each run.
func testKey(tb testing.TB, seed byte) Key {
	tb.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return Key{ID: KeyID(priv.Public().(ed25519.PublicKey)), Private: priv}
}

// newTokens returns Tokens with the default config over keys, reading time from clk.
func newTokens(tb testing.TB, clk *clocktesting.FakePassiveClock, keys ...Key) *Tokens {
	tb.Helper()
	tok, err := New(Config{}, keys, clk)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return tok
}

// newTokensWith returns Tokens with cfg (zero fields default) over keys, reading time from clk.
func newTokensWith(tb testing.TB, cfg Config, clk *clocktesting.FakePassiveClock, keys ...Key) *Tokens {
	tb.Helper()
	tok, err := New(cfg, keys, clk)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return tok
}

// tokenSpec describes a token to forge by hand: what the default config accepts, signed with
// EdDSA by key, unless a test changes it.
type tokenSpec struct {
	method jwt.SigningMethod
	key    any
	header map[string]any
	claims map[string]any
}

// validSpec is a token Tokens built from key accepts at testNow.
func validSpec(key Key) tokenSpec {
	return tokenSpec{
		method: jwt.SigningMethodEdDSA,
		key:    key.Private,
		header: map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": key.ID},
		claims: map[string]any{
			"iss":  "usher",
			"aud":  "usher-players",
			"sub":  "p_aaaaaaaaaaaaaaaaaaaa",
			"name": "Ada",
			"iat":  testNow.Unix(),
			"exp":  testNow.Add(30 * time.Minute).Unix(),
			"jti":  "fixed-jti",
		},
	}
}

// with returns a copy of s with header and claim changes applied; a nil value deletes the entry.
func (s tokenSpec) with(header, claims map[string]any) tokenSpec {
	s.header, s.claims = maps.Clone(s.header), maps.Clone(s.claims)
	for k, v := range header {
		if v == nil {
			delete(s.header, k)
		} else {
			s.header[k] = v
		}
	}
	for k, v := range claims {
		if v == nil {
			delete(s.claims, k)
		} else {
			s.claims[k] = v
		}
	}
	return s
}

// sign encodes and signs s exactly as described, header included (alg is not filled in).
func (s tokenSpec) sign(tb testing.TB) string {
	tb.Helper()
	tok := &jwt.Token{Header: s.header, Claims: jwt.MapClaims(s.claims), Method: s.method}
	str, err := tok.SignedString(s.key)
	if err != nil {
		tb.Fatalf("sign test token: %v", err)
	}
	return str
}

// segment returns part i (0 header, 1 payload, 2 signature) of a compact JWT.
func segment(tb testing.TB, token string, i int) string {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d segments, want 3", len(parts))
	}
	return parts[i]
}

// decodeSegment base64url-decodes and JSON-decodes part i of token into a map.
func decodeSegment(tb testing.TB, token string, i int) map[string]any {
	tb.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(segment(tb, token, i))
	if err != nil {
		tb.Fatalf("decode segment %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatalf("unmarshal segment %d: %v", i, err)
	}
	return m
}

// encodeJSON returns v as a base64url JSON segment.
func encodeJSON(tb testing.TB, v any) string {
	tb.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// flipLowBit returns the base64url character whose value differs from c's in the lowest bit.
func flipLowBit(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return string(alphabet[strings.IndexByte(alphabet, c)^1])
}
