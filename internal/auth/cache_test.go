package auth

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

// uncached is the config of Tokens without a verify cache, the reference the cache must match.
var uncached = Config{VerifyCacheSize: -1}

func TestVerifyCacheHitReturnsSameClaims(t *testing.T) {
	key := testKey(t, 1)
	clk := clocktesting.NewFakePassiveClock(testNow)
	tokens := newTokens(t, clk, key)
	reference := newTokensWith(t, uncached, clk, key)
	issued, _, err := tokens.Issue("p_abcdefghijklmnopqrst", "Ada Lovelace")
	if err != nil {
		t.Fatal(err)
	}
	valid := validSpec(key)

	tests := []struct {
		name  string
		token string
	}{
		{name: "issued", token: issued},
		{name: "hand-signed", token: valid.sign(t)},
		{name: "no name", token: valid.with(nil, map[string]any{"name": nil}).sign(t)},
		{name: "nbf within leeway", token: valid.with(nil, map[string]any{"nbf": testNow.Add(10 * time.Second).Unix()}).sign(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := reference.Verify(tt.token)
			if err != nil {
				t.Fatalf("uncached Verify: %v", err)
			}
			miss, err := tokens.Verify(tt.token)
			if err != nil {
				t.Fatalf("first Verify: %v", err)
			}
			hit, err := tokens.Verify(tt.token)
			if err != nil {
				t.Fatalf("second Verify: %v", err)
			}
			if diff := cmp.Diff(want, miss); diff != "" {
				t.Errorf("first Verify claims (-uncached +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, hit); diff != "" {
				t.Errorf("cached Verify claims (-uncached +got):\n%s", diff)
			}
			// Full verification allocates; a hit does not, so this tells the two paths apart.
			if allocs := testing.AllocsPerRun(10, func() { _, _ = tokens.Verify(tt.token) }); allocs != 0 {
				t.Errorf("Verify of a cached token made %v allocations, want 0 (a cache hit)", allocs)
			}
		})
	}
	if got, want := tokens.cache.len(), len(tests); got != want {
		t.Errorf("cache holds %d entries, want %d", got, want)
	}
}

// TestVerifyCacheFollowsClock moves the clock after a token was cached and checks that the
// cached path and full verification agree at every boundary of exp, nbf and iat.
func TestVerifyCacheFollowsClock(t *testing.T) {
	key := testKey(t, 1)
	valid := validSpec(key)
	const leeway, skew = 30 * time.Second, time.Minute // the defaults
	exp := testNow.Add(30 * time.Minute)               // validSpec's
	nbf := testNow.Add(10 * time.Minute)
	plain := valid.sign(t)
	withNBF := valid.with(nil, map[string]any{"nbf": nbf.Unix()}).sign(t)

	tests := []struct {
		name    string
		token   string
		cacheAt time.Time // when the token is first verified, and cached
		now     time.Time // when it is verified again
		wantErr error     // nil: accepted
	}{
		{name: "1s before exp", token: plain, cacheAt: testNow, now: exp.Add(-time.Second)},
		{name: "at exp", token: plain, cacheAt: testNow, now: exp},
		{name: "1s before leeway ends", token: plain, cacheAt: testNow, now: exp.Add(leeway - time.Second)},
		{name: "1ns before leeway ends", token: plain, cacheAt: testNow, now: exp.Add(leeway - time.Nanosecond)},
		{name: "when leeway ends", token: plain, cacheAt: testNow, now: exp.Add(leeway), wantErr: jwt.ErrTokenExpired},
		{name: "1s after leeway ends", token: plain, cacheAt: testNow, now: exp.Add(leeway + time.Second), wantErr: jwt.ErrTokenExpired},
		{name: "a day after exp", token: plain, cacheAt: testNow, now: exp.Add(24 * time.Hour), wantErr: jwt.ErrTokenExpired},
		// The clock can step back (NTP, or another replica's tokens): nbf and iat are checked again.
		{name: "clock back to nbf minus leeway", token: withNBF, cacheAt: nbf, now: nbf.Add(-leeway)},
		{name: "clock back to 1s before nbf minus leeway", token: withNBF, cacheAt: nbf, now: nbf.Add(-leeway - time.Second), wantErr: jwt.ErrTokenNotValidYet},
		{name: "clock back to iat minus skew", token: plain, cacheAt: testNow, now: testNow.Add(-skew)},
		{name: "clock back to 1s before iat minus skew", token: plain, cacheAt: testNow, now: testNow.Add(-skew - time.Second), wantErr: errIssuedInFuture},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(tt.cacheAt)
			tokens := newTokens(t, clk, key)
			reference := newTokensWith(t, uncached, clk, key)
			if _, err := tokens.Verify(tt.token); err != nil {
				t.Fatalf("Verify at %v: %v", tt.cacheAt, err)
			}

			clk.SetTime(tt.now)
			wantClaims, wantErr := reference.Verify(tt.token)
			gotClaims, gotErr := tokens.Verify(tt.token)
			if !errors.Is(wantErr, tt.wantErr) || (tt.wantErr == nil) != (wantErr == nil) {
				t.Fatalf("uncached Verify at %v error = %v, want %v (the test's expectation is wrong)", tt.now, wantErr, tt.wantErr)
			}
			if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
				t.Fatalf("cached Verify at %v error = %v, uncached %v", tt.now, gotErr, wantErr)
			}
			if diff := cmp.Diff(wantClaims, gotClaims); diff != "" {
				t.Errorf("claims (-uncached +cached):\n%s", diff)
			}
			wantLen := 1
			if tt.wantErr != nil {
				wantLen = 0 // a refused entry is dropped, not kept
			}
			if got := tokens.cache.len(); got != wantLen {
				t.Errorf("cache holds %d entries, want %d", got, wantLen)
			}
		})
	}
}

func TestVerifyCacheTamperedTokenNeverHits(t *testing.T) {
	key := testKey(t, 1)
	tokens := newTokens(t, clocktesting.NewFakePassiveClock(testNow), key)
	token, _, err := tokens.Issue("p_abcdefghijklmnopqrst", "Ada")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Verify(token); err != nil {
		t.Fatal(err)
	}
	head, payload, sig := segment(t, token, 0), segment(t, token, 1), segment(t, token, 2)
	claims := decodeSegment(t, token, 1)
	claims["sub"] = "p_someoneelseentirely"

	tests := []struct {
		name  string
		token string
	}{
		{name: "other payload, same signature", token: head + "." + encodeJSON(t, claims) + "." + sig},
		{name: "signature byte changed", token: head + "." + payload + "." + sig[:10] + flipLowBit(sig[10]) + sig[11:]},
		{name: "non-canonical signature spelling", token: token[:len(token)-1] + flipLowBit(token[len(token)-1])},
		{name: "truncated", token: token[:len(token)-1]},
		{name: "trailing byte", token: token + "A"},
		{name: "trailing space", token: token + " "},
		{name: "signature dropped", token: head + "." + payload + "."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tokens.Verify(tt.token); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Verify(tampered) = %+v, %v; want ErrInvalidToken", got, err)
			}
		})
	}
	if got := tokens.cache.len(); got != 1 {
		t.Errorf("cache holds %d entries, want only the genuine token", got)
	}
}

func TestVerifyCacheKeepsNoFailure(t *testing.T) {
	key := testKey(t, 1)
	clk := clocktesting.NewFakePassiveClock(testNow)
	tokens := newTokens(t, clk, key)
	valid := validSpec(key)
	notYet := valid.with(nil, map[string]any{"nbf": testNow.Add(10 * time.Minute).Unix()}).sign(t)

	refused := []string{
		notYet,
		valid.with(nil, map[string]any{"exp": testNow.Add(-time.Hour).Unix()}).sign(t),
		valid.with(nil, map[string]any{"aud": "someone-else"}).sign(t),
		valid.with(nil, map[string]any{"sub": nil}).sign(t),
		validSpec(testKey(t, 2)).with(map[string]any{"kid": key.ID}, nil).sign(t),
		"not.a.token",
		"",
	}
	for _, tok := range refused {
		for range 2 { // a second try must run the full checks again, and fail again
			if _, err := tokens.Verify(tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify(%.40q…) error = %v, want ErrInvalidToken", tok, err)
			}
		}
	}
	if got := tokens.cache.len(); got != 0 {
		t.Fatalf("cache holds %d entries after only failures, want 0", got)
	}

	// The token refused before its nbf is accepted once the time comes: the refusal was not kept.
	clk.SetTime(testNow.Add(10 * time.Minute))
	if _, err := tokens.Verify(notYet); err != nil {
		t.Errorf("Verify after nbf: %v, want it accepted", err)
	}
}

func TestVerifyCacheIsBounded(t *testing.T) {
	key := testKey(t, 1)
	for _, size := range []int{1, 3, 64, 65, 100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(testNow)
			tokens := newTokensWith(t, Config{VerifyCacheSize: size}, clk, key)
			toks := make([]string, 3*size)
			for i := range toks {
				tok, _, err := tokens.Issue(fmt.Sprintf("p_%d", i), "")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tokens.Verify(tok); err != nil {
					t.Fatalf("Verify token %d: %v", i, err)
				}
				if got := tokens.cache.len(); got > size {
					t.Fatalf("after %d tokens the cache holds %d entries, want at most %d", i+1, got, size)
				}
				toks[i] = tok
			}
			// Evicted or not, every token still verifies, with its own claims.
			for i, tok := range toks {
				got, err := tokens.Verify(tok)
				if err != nil {
					t.Fatalf("Verify token %d again: %v", i, err)
				}
				if want := fmt.Sprintf("p_%d", i); got.Player != want {
					t.Fatalf("Verify token %d: player %q, want %q", i, got.Player, want)
				}
			}
			if got := tokens.cache.len(); got > size {
				t.Errorf("cache holds %d entries, want at most %d", got, size)
			}
		})
	}
}

func TestNewVerifyCacheShardsAddUpToSize(t *testing.T) {
	for _, size := range []int{1, 2, 3, 31, 63, 64, 65, 100, 1000, 65536, maxVerifyCacheSize} {
		c := newVerifyCache(size)
		total := 0
		for i := range c.shards {
			if c.shards[i].max < 1 {
				t.Errorf("size %d: shard %d holds at most %d entries, want at least 1", size, i, c.shards[i].max)
			}
			total += c.shards[i].max
		}
		if total != size {
			t.Errorf("size %d: shards hold %d entries in total", size, total)
		}
		if n := len(c.shards); n&(n-1) != 0 || n > cacheShards || c.mask != n-1 {
			t.Errorf("size %d: %d shards, mask %d; want a power of two up to %d", size, n, c.mask, cacheShards)
		}
	}
}

func TestVerifyCacheOff(t *testing.T) {
	key := testKey(t, 1)
	clk := clocktesting.NewFakePassiveClock(testNow)
	tokens := newTokensWith(t, uncached, clk, key)
	if tokens.cache != nil {
		t.Fatal("VerifyCacheSize -1 made a cache")
	}
	token, exp, err := tokens.Issue("p_1", "Ada")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := tokens.Verify(token)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if got.Player != "p_1" || got.Name != "Ada" {
			t.Errorf("Verify claims = %+v", got)
		}
	}
	if _, err := tokens.Verify(token[:len(token)-2]); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify(truncated) error = %v, want ErrInvalidToken", err)
	}
	clk.SetTime(exp.Add(time.Minute))
	if _, err := tokens.Verify(token); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("Verify after expiry error = %v, want %v", err, jwt.ErrTokenExpired)
	}
}

// TestVerifyCacheConcurrent verifies good and bad tokens from many goroutines through a cache
// too small to hold them all, so hits, misses, evictions and removals race (run with -race).
func TestVerifyCacheConcurrent(t *testing.T) {
	key := testKey(t, 1)
	clk := clocktesting.NewFakePassiveClock(testNow)
	tokens := newTokensWith(t, Config{VerifyCacheSize: 8}, clk, key)
	good := make([]string, 32)
	for i := range good {
		tok, _, err := tokens.Issue(fmt.Sprintf("p_%d", i), "")
		if err != nil {
			t.Fatal(err)
		}
		good[i] = tok
	}
	// Expired at testNow, so its entry (cached while the clock was earlier) must be removed.
	clk.SetTime(testNow.Add(-time.Hour))
	expiring := validSpec(key).with(nil, map[string]any{"iat": testNow.Add(-time.Hour).Unix(), "exp": testNow.Add(-10 * time.Minute).Unix()}).sign(t)
	if _, err := tokens.Verify(expiring); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(testNow)
	bad := strings.Replace(good[0], ".", ".x", 1)

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				n := (g*7 + i) % len(good)
				got, err := tokens.Verify(good[n])
				if err != nil {
					t.Errorf("Verify good token %d: %v", n, err)
					return
				}
				if want := fmt.Sprintf("p_%d", n); got.Player != want {
					t.Errorf("Verify good token %d: player %q, want %q", n, got.Player, want)
					return
				}
				if i%10 == 0 {
					if _, err := tokens.Verify(bad); err == nil {
						t.Error("Verify accepted a tampered token")
						return
					}
					if _, err := tokens.Verify(expiring); !errors.Is(err, jwt.ErrTokenExpired) {
						t.Errorf("Verify expired token error = %v, want %v", err, jwt.ErrTokenExpired)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if got := tokens.cache.len(); got > 8 {
		t.Errorf("cache holds %d entries, want at most 8", got)
	}
}
