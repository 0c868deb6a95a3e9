package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	clocktesting "k8s.io/utils/clock/testing"
)

// FuzzVerify checks that Verify never panics, that every refusal wraps ErrInvalidToken with a
// short message, and that it never accepts a token it did not issue. "Issued" is judged
// independently of Verify: the header must be byte for byte the one Issue writes, the signature
// must be the canonical encoding of a valid Ed25519 signature by our key, and the claims must
// be ours. (Comparing with a set of issued strings would break on corpus entries kept from
// earlier runs, whose jti differ.)
func FuzzVerify(f *testing.F) {
	key := testKey(f, 1)
	pub := key.Private.Public().(ed25519.PublicKey)
	tokens := newTokens(f, clocktesting.NewFakePassiveClock(testNow), key)

	issued, _, err := tokens.Issue("p_fuzzfuzzfuzzfuzzfuzz", "Fuzz")
	if err != nil {
		f.Fatal(err)
	}
	wantHeader := segment(f, issued, 0)
	valid := validSpec(key)
	seeds := []string{
		issued,
		valid.sign(f),
		issued[:len(issued)-2],
		issued[:len(issued)-1] + flipLowBit(issued[len(issued)-1]), // same signature bytes, other spelling
		issued[:strings.LastIndexByte(issued, '.')+1],
		issued + ".",
		"..",
		"",
		"e30.e30.",
		noneToken(f, valid),
		valid.with(map[string]any{"typ": "JWT"}, nil).sign(f),
		valid.with(map[string]any{"kid": "../../etc/passwd"}, nil).sign(f),
		valid.with(nil, map[string]any{"exp": nil}).sign(f),
		valid.with(nil, map[string]any{"aud": []string{"usher-players"}}).sign(f),
	}
	for _, s := range seeds {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, token string) {
		claims, err := tokens.Verify(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify error %q does not wrap ErrInvalidToken", err)
			}
			if len(err.Error()) > 100 {
				t.Fatalf("Verify error is %d bytes long: %.200q", len(err.Error()), err)
			}
			return
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("Verify accepted a token with %d segments: %q", len(parts), token)
		}
		if parts[0] != wantHeader {
			t.Fatalf("Verify accepted a header Issue never writes: %q", parts[0])
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || base64.RawURLEncoding.EncodeToString(sig) != parts[2] {
			t.Fatalf("Verify accepted a non-canonical signature encoding: %q", parts[2])
		}
		if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
			t.Fatalf("Verify accepted a token our key did not sign: %q", token)
		}
		if claims.Player == "" || claims.ExpiresAt.IsZero() || claims.IssuedAt.IsZero() {
			t.Fatalf("Verify accepted incomplete claims %+v", claims)
		}
	})
}

// noneToken returns s re-encoded with alg "none" and an empty signature.
func noneToken(tb testing.TB, s tokenSpec) string {
	tb.Helper()
	s = s.with(map[string]any{"alg": "none"}, nil)
	s.method, s.key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
	return s.sign(tb)
}
