package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestIssueVerifyRoundTrip(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(testNow.Add(700 * time.Millisecond))
	tokens := newTokens(t, clk, testKey(t, 1))

	token, exp, err := tokens.Issue("p_abcdefghijklmnopqrst", "Ada Lovelace")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if want := testNow.Add(30 * time.Minute); !exp.Equal(want) {
		t.Errorf("Issue expiresAt = %v, want %v (iat truncated to the second + TTL)", exp, want)
	}

	got, err := tokens.Verify(token)
	if err != nil {
		t.Fatalf("Verify(issued token): %v", err)
	}
	want := Claims{Player: "p_abcdefghijklmnopqrst", Name: "Ada Lovelace", IssuedAt: testNow, ExpiresAt: testNow.Add(30 * time.Minute)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Verify claims mismatch (-want +got):\n%s", diff)
	}
}

func TestIssueTokenShape(t *testing.T) {
	key := testKey(t, 1)
	tokens := newTokens(t, clocktesting.NewFakePassiveClock(testNow), key)

	first, _, err := tokens.Issue("p_1", "")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	second, _, err := tokens.Issue("p_1", "")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}

	gotHeader := decodeSegment(t, first, 0)
	wantHeader := map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": key.ID}
	if diff := cmp.Diff(wantHeader, gotHeader); diff != "" {
		t.Errorf("header mismatch (-want +got):\n%s", diff)
	}

	gotClaims := decodeSegment(t, first, 1)
	jti, _ := gotClaims["jti"].(string)
	if len(jti) < 22 {
		t.Errorf("jti = %q, want at least 22 random characters", jti)
	}
	delete(gotClaims, "jti")
	wantClaims := map[string]any{
		"iss": "usher",
		"aud": "usher-players", // one string, not an array
		"sub": "p_1",
		"iat": float64(testNow.Unix()),
		"exp": float64(testNow.Add(30 * time.Minute).Unix()),
	}
	if diff := cmp.Diff(wantClaims, gotClaims); diff != "" {
		t.Errorf("claims mismatch (-want +got):\n%s", diff)
	}

	if got := decodeSegment(t, second, 1)["jti"]; got == jti {
		t.Errorf("two tokens share jti %q", jti)
	}
}

func TestIssueRejectsBadInput(t *testing.T) {
	tokens := newTokens(t, clocktesting.NewFakePassiveClock(testNow), testKey(t, 1))
	tests := []struct {
		name, player, playerName string
	}{
		{name: "empty player", player: "", playerName: "Ada"},
		{name: "long player", player: strings.Repeat("p", maxPlayerLen+1), playerName: "Ada"},
		{name: "long name", player: "p_1", playerName: strings.Repeat("n", maxNameLen+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if token, _, err := tokens.Issue(tt.player, tt.playerName); err == nil {
				t.Errorf("Issue(%.20q, %.20q) = %.20q, nil; want an error", tt.player, tt.playerName, token)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	key := testKey(t, 1)
	attacker := testKey(t, 2)
	tokens := newTokens(t, clocktesting.NewFakePassiveClock(testNow), key)
	valid := validSpec(key)
	validToken := valid.sign(t)

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Private.Public().(ed25519.PublicKey)
	leeway := 30 * time.Second

	tests := []struct {
		name    string
		token   func(tb testing.TB) string
		wantErr error // nil: accepted
	}{
		{
			name:  "valid",
			token: func(tb testing.TB) string { return validToken },
		},
		{
			name: "alg none",
			token: func(tb testing.TB) string {
				s := valid.with(map[string]any{"alg": "none"}, nil)
				s.method, s.key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
				return s.sign(tb)
			},
			wantErr: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "alg none with a real signature kept",
			token: func(tb testing.TB) string {
				h := encodeJSON(tb, map[string]any{"alg": "none", "typ": "at+jwt", "kid": key.ID})
				return h + "." + segment(tb, validToken, 1) + "." + segment(tb, validToken, 2)
			},
			wantErr: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "empty signature",
			token: func(tb testing.TB) string {
				return validToken[:strings.LastIndexByte(validToken, '.')+1]
			},
			wantErr: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "HS256 signed with the public key bytes",
			token: func(tb testing.TB) string {
				s := valid.with(map[string]any{"alg": "HS256"}, nil)
				s.method, s.key = jwt.SigningMethodHS256, []byte(pub)
				return s.sign(tb)
			},
			wantErr: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "RS256",
			token: func(tb testing.TB) string {
				s := valid.with(map[string]any{"alg": "RS256"}, nil)
				s.method, s.key = jwt.SigningMethodRS256, rsaKey
				return s.sign(tb)
			},
			wantErr: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "ES256",
			token: func(tb testing.TB) string {
				s := valid.with(map[string]any{"alg": "ES256"}, nil)
				s.method, s.key = jwt.SigningMethodES256, ecKey
				return s.sign(tb)
			},
			wantErr: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "unregistered alg",
			token: func(tb testing.TB) string {
				h := encodeJSON(tb, map[string]any{"alg": "Ed448", "typ": "at+jwt", "kid": key.ID})
				return h + "." + segment(tb, validToken, 1) + "." + segment(tb, validToken, 2)
			},
			wantErr: jwt.ErrTokenUnverifiable,
		},
		{
			name: "signed by another key under our kid",
			token: func(tb testing.TB) string {
				s := valid
				s.key = attacker.Private
				return s.sign(tb)
			},
			wantErr: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "expired beyond leeway",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"exp": testNow.Add(-leeway - time.Second).Unix()}).sign(tb)
			},
			wantErr: jwt.ErrTokenExpired,
		},
		{
			name: "expired within leeway",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"exp": testNow.Add(-leeway + time.Second).Unix()}).sign(tb)
			},
		},
		{
			name: "future nbf",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"nbf": testNow.Add(leeway + time.Minute).Unix()}).sign(tb)
			},
			wantErr: jwt.ErrTokenNotValidYet,
		},
		{
			name: "nbf within leeway",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"nbf": testNow.Add(leeway - time.Second).Unix()}).sign(tb)
			},
		},
		{
			name: "far-future iat",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"iat": testNow.Add(time.Hour).Unix()}).sign(tb)
			},
			wantErr: errIssuedInFuture,
		},
		{
			name: "iat ahead by more than leeway but within MaxIssuedAtSkew",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"iat": testNow.Add(45 * time.Second).Unix()}).sign(tb)
			},
		},
		{
			name: "missing iat",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"iat": nil}).sign(tb)
			},
			wantErr: errNoIssuedAt,
		},
		{
			name: "wrong iss",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"iss": "someone-else"}).sign(tb)
			},
			wantErr: jwt.ErrTokenInvalidIssuer,
		},
		{
			name: "missing iss",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"iss": nil}).sign(tb)
			},
			wantErr: jwt.ErrTokenRequiredClaimMissing,
		},
		{
			name: "wrong aud",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"aud": "usher-admin"}).sign(tb)
			},
			wantErr: jwt.ErrTokenInvalidAudience,
		},
		{
			name: "missing aud",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"aud": nil}).sign(tb)
			},
			wantErr: jwt.ErrTokenRequiredClaimMissing,
		},
		{
			name: "aud as an array",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"aud": []string{"usher-players", "other"}}).sign(tb)
			},
			wantErr: jwt.ErrTokenMalformed,
		},
		{
			name: "typ JWT (an id token or any other JWT)",
			token: func(tb testing.TB) string {
				return valid.with(map[string]any{"typ": "JWT"}, nil).sign(tb)
			},
			wantErr: errBadType,
		},
		{
			name: "missing typ",
			token: func(tb testing.TB) string {
				return valid.with(map[string]any{"typ": nil}, nil).sign(tb)
			},
			wantErr: errBadType,
		},
		{
			name: "crit header",
			token: func(tb testing.TB) string {
				return valid.with(map[string]any{"crit": []string{"exp"}}, nil).sign(tb)
			},
			wantErr: errCritical,
		},
		{
			name: "missing exp",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"exp": nil}).sign(tb)
			},
			wantErr: jwt.ErrTokenRequiredClaimMissing,
		},
		{
			name: "missing sub",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"sub": nil}).sign(tb)
			},
			wantErr: errNoSubject,
		},
		{
			name: "empty sub",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"sub": ""}).sign(tb)
			},
			wantErr: errNoSubject,
		},
		{
			name: "tampered payload",
			token: func(tb testing.TB) string {
				claims := decodeSegment(tb, validToken, 1)
				claims["sub"] = "p_someoneelse00000000"
				return segment(tb, validToken, 0) + "." + encodeJSON(tb, claims) + "." + segment(tb, validToken, 2)
			},
			wantErr: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "truncated signature",
			token: func(tb testing.TB) string {
				return validToken[:len(validToken)-2] // 84 base64 chars: a clean 63-byte signature
			},
			wantErr: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "truncated to two segments",
			token: func(tb testing.TB) string {
				return validToken[:strings.LastIndexByte(validToken, '.')]
			},
			wantErr: jwt.ErrTokenMalformed,
		},
		{
			name: "four segments",
			token: func(tb testing.TB) string {
				return validToken + ".AAAA"
			},
			wantErr: jwt.ErrTokenMalformed,
		},
		{
			name: "bad base64 in header",
			token: func(tb testing.TB) string {
				return "e!" + validToken[2:]
			},
			wantErr: jwt.ErrTokenMalformed,
		},
		{
			name: "padded base64 payload",
			token: func(tb testing.TB) string {
				p := base64.URLEncoding.EncodeToString([]byte(`{"sub":"p_1"}`)) // has "=" padding
				return segment(tb, validToken, 0) + "." + p + "." + segment(tb, validToken, 2)
			},
			wantErr: jwt.ErrTokenMalformed,
		},
		{
			name: "non-canonical base64 signature (same bytes, other string)",
			token: func(tb testing.TB) string {
				// The last of 86 characters carries 2 signature bits and 4 zero bits; setting a
				// zero bit makes a different string that a lenient decoder maps to the same
				// signature.
				return validToken[:len(validToken)-1] + flipLowBit(validToken[len(validToken)-1])
			},
			wantErr: jwt.ErrTokenMalformed,
		},
		{
			name:    "not a JWT (a ticket id)",
			token:   func(tb testing.TB) string { return "q8ZfC0S2m1sVvWQ4dKx6cR9bT3yJ7hN5pL0aEoUiGkM" },
			wantErr: jwt.ErrTokenMalformed,
		},
		{
			name:    "empty",
			token:   func(tb testing.TB) string { return "" },
			wantErr: jwt.ErrTokenMalformed,
		},
		{
			name: "unknown kid",
			token: func(tb testing.TB) string {
				s := valid.with(map[string]any{"kid": attacker.ID}, nil)
				s.key = attacker.Private
				return s.sign(tb)
			},
			wantErr: errUnknownKey,
		},
		{
			name: "missing kid",
			token: func(tb testing.TB) string {
				return valid.with(map[string]any{"kid": nil}, nil).sign(tb)
			},
			wantErr: errBadKeyID,
		},
		{
			name: "numeric kid",
			token: func(tb testing.TB) string {
				return valid.with(map[string]any{"kid": 7}, nil).sign(tb)
			},
			wantErr: errBadKeyID,
		},
		{
			name: "path-like kid",
			token: func(tb testing.TB) string {
				return valid.with(map[string]any{"kid": "../../etc/passwd"}, nil).sign(tb)
			},
			wantErr: errBadKeyID,
		},
		{
			name: "2 KB kid",
			token: func(tb testing.TB) string {
				return valid.with(map[string]any{"kid": strings.Repeat("a", 2<<10)}, nil).sign(tb)
			},
			wantErr: errBadKeyID,
		},
		{
			name: "10 KB kid",
			token: func(tb testing.TB) string {
				return valid.with(map[string]any{"kid": strings.Repeat("a", 10<<10)}, nil).sign(tb)
			},
			wantErr: errTooLong,
		},
		{
			name: "oversized but otherwise valid token",
			token: func(tb testing.TB) string {
				return valid.with(nil, map[string]any{"name": strings.Repeat("n", maxTokenLen)}).sign(tb)
			},
			wantErr: errTooLong,
		},
		{
			name: "jku and x5u are ignored",
			token: func(tb testing.TB) string {
				return valid.with(map[string]any{"jku": "http://127.0.0.1:1/keys", "x5u": "http://127.0.0.1:1/cert"}, nil).sign(tb)
			},
		},
		{
			name: "embedded jwk of the signing attacker key",
			token: func(tb testing.TB) string {
				apub := attacker.Private.Public().(ed25519.PublicKey)
				jwk := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(apub)}
				s := valid.with(map[string]any{"jwk": jwk, "jku": "http://127.0.0.1:1/keys"}, nil)
				s.key = attacker.Private
				return s.sign(tb)
			},
			wantErr: jwt.ErrTokenSignatureInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := tt.token(t)
			got, err := tokens.Verify(token)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want it accepted", err)
				}
				if got.Player == "" {
					t.Errorf("Verify accepted the token but Claims.Player is empty")
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted the token (claims %+v), want %v", got, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Verify error %q does not wrap ErrInvalidToken", err)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify error = %q, want reason %q", err, tt.wantErr)
			}
			if got != (Claims{}) {
				t.Errorf("Verify returned claims %+v with its error, want none", got)
			}
			if len(err.Error()) > 100 {
				t.Errorf("Verify error is %d bytes long; it must not echo the token", len(err.Error()))
			}
		})
	}
}

// TestKeyForRefusesOtherAlgorithms holds the key function's own algorithm check, which the
// parser's WithValidMethods otherwise hides.
func TestKeyForRefusesOtherAlgorithms(t *testing.T) {
	key := testKey(t, 1)
	tokens := newTokens(t, clocktesting.NewFakePassiveClock(testNow), key)
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodNone, jwt.SigningMethodHS256, jwt.SigningMethodRS256, jwt.SigningMethodES256, jwt.SigningMethodPS256} {
		t.Run(m.Alg(), func(t *testing.T) {
			tok := &jwt.Token{Method: m, Header: map[string]any{"alg": m.Alg(), "typ": tokenType, "kid": key.ID}}
			got, err := tokens.keyFor(tok)
			if !errors.Is(err, errBadAlg) {
				t.Errorf("keyFor(alg %s) = %v, %v; want error %v", m.Alg(), got, err, errBadAlg)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(testNow)
	retired, current := testKey(t, 1), testKey(t, 2)

	before := newTokens(t, clk, retired)          // before the rotation
	during := newTokens(t, clk, current, retired) // grace period: new key signs, old still verifies
	after := newTokens(t, clk, current)           // retired key dropped
	oldToken, _, err := before.Issue("p_old", "")
	if err != nil {
		t.Fatal(err)
	}
	newToken, _, err := during.Issue("p_new", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeSegment(t, newToken, 0)["kid"]; got != current.ID {
		t.Errorf("token issued during rotation has kid %v, want the current key %s", got, current.ID)
	}

	tests := []struct {
		name    string
		tokens  *Tokens
		token   string
		wantErr error
	}{
		{name: "old token during grace period", tokens: during, token: oldToken},
		{name: "new token during grace period", tokens: during, token: newToken},
		{name: "old token after the retired key is dropped", tokens: after, token: oldToken, wantErr: errUnknownKey},
		{name: "new token after the retired key is dropped", tokens: after, token: newToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.tokens.Verify(tt.token)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Verify: %v, want it accepted", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyExpiryFollowsClock(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(testNow)
	tokens := newTokens(t, clk, testKey(t, 1))
	token, exp, err := tokens.Issue("p_1", "")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		now     time.Time
		wantErr error
	}{
		{name: "just issued", now: testNow},
		{name: "at expiry, within leeway", now: exp},
		{name: "last second of leeway", now: exp.Add(29 * time.Second)},
		{name: "leeway over", now: exp.Add(30 * time.Second), wantErr: jwt.ErrTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.SetTime(tt.now)
			_, err := tokens.Verify(token)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Verify at %v: %v, want it accepted", tt.now, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify at %v error = %v, want %v", tt.now, err, tt.wantErr)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	var got Config
	got.SetDefaults()
	want := Config{Issuer: "usher", Audience: "usher-players", TTL: 30 * time.Minute, Leeway: 30 * time.Second, MaxIssuedAtSkew: time.Minute, VerifyCacheSize: 65536}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SetDefaults mismatch (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}

	tests := []struct {
		name   string
		change func(*Config)
	}{
		{name: "empty issuer", change: func(c *Config) { c.Issuer = "" }},
		{name: "empty audience", change: func(c *Config) { c.Audience = "" }},
		{name: "ttl too short", change: func(c *Config) { c.TTL = time.Millisecond }},
		{name: "ttl too long", change: func(c *Config) { c.TTL = 25 * time.Hour }},
		{name: "negative leeway", change: func(c *Config) { c.Leeway = -time.Second }},
		{name: "huge leeway", change: func(c *Config) { c.Leeway = time.Hour }},
		{name: "negative iat skew", change: func(c *Config) { c.MaxIssuedAtSkew = -time.Second }},
		{name: "huge iat skew", change: func(c *Config) { c.MaxIssuedAtSkew = time.Hour }},
		{name: "zero verify cache size", change: func(c *Config) { c.VerifyCacheSize = 0 }},
		{name: "verify cache size below -1", change: func(c *Config) { c.VerifyCacheSize = -2 }},
		{name: "huge verify cache size", change: func(c *Config) { c.VerifyCacheSize = maxVerifyCacheSize + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := want
			tt.change(&c)
			if err := c.Validate(); err == nil {
				t.Errorf("Validate(%+v) = nil, want an error", c)
			}
		})
	}

	for _, size := range []int{-1, 1, maxVerifyCacheSize} {
		c := want
		c.VerifyCacheSize = size
		if err := c.Validate(); err != nil {
			t.Errorf("Validate with VerifyCacheSize %d: %v, want nil", size, err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	key := testKey(t, 1)
	tests := []struct {
		name string
		cfg  Config
		keys []Key
	}{
		{name: "no keys", keys: nil},
		{name: "short private key", keys: []Key{{ID: "k", Private: key.Private[:32]}}},
		{name: "path-like key id", keys: []Key{{ID: "../k", Private: key.Private}}},
		{name: "duplicate key id", keys: []Key{key, {ID: key.ID, Private: testKey(t, 2).Private}}},
		{name: "invalid config", cfg: Config{TTL: -time.Minute}, keys: []Key{key}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, tt.keys, clocktesting.NewFakePassiveClock(testNow)); err == nil {
				t.Errorf("New = nil error, want one")
			}
		})
	}
}

func TestNewNamesKeyWithoutID(t *testing.T) {
	key := testKey(t, 1)
	tokens := newTokens(t, clocktesting.NewFakePassiveClock(testNow), Key{Private: key.Private})
	token, _, err := tokens.Issue("p_1", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := decodeSegment(t, token, 0)["kid"], key.ID; got != want {
		t.Errorf("kid = %v, want KeyID of the public key %s", got, want)
	}
}

func BenchmarkIssue(b *testing.B) {
	tokens := newTokens(b, clocktesting.NewFakePassiveClock(testNow), testKey(b, 1))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tokens.Issue("p_abcdefghijklmnopqrst", "Ada"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures full verification: the cache is off.
func BenchmarkVerify(b *testing.B) {
	tokens := newTokensWith(b, Config{VerifyCacheSize: -1}, clocktesting.NewFakePassiveClock(testNow), testKey(b, 1))
	token, _, err := tokens.Issue("p_abcdefghijklmnopqrst", "Ada")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokens.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached measures Verify of a token it has already verified (a cache hit).
func BenchmarkVerifyCached(b *testing.B) {
	tokens := newTokens(b, clocktesting.NewFakePassiveClock(testNow), testKey(b, 1))
	token, _, err := tokens.Issue("p_abcdefghijklmnopqrst", "Ada")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tokens.Verify(token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokens.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCachedParallel measures cache hits from every CPU at once, over many tokens,
// so that the shards' locks are contended as under load.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	tokens := newTokens(b, clocktesting.NewFakePassiveClock(testNow), testKey(b, 1))
	toks := make([]string, 256)
	for i := range toks {
		tok, _, err := tokens.Issue(fmt.Sprintf("p_%020d", i), "Ada")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tokens.Verify(tok); err != nil {
			b.Fatal(err)
		}
		toks[i] = tok
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := tokens.Verify(toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
