// Package auth issues and verifies player access tokens (JWTs signed with Ed25519).
//
// A token names one player: `sub` is the player id, `name` the display name. Verification is
// strict by design (RFC 8725): the algorithm is pinned to EdDSA, the header must say
// typ "at+jwt" (RFC 9068) so no other kind of token passes as an access token, the key is
// picked only by a well-formed `kid` from the configured keys (never from `jku`, `x5u` or an
// embedded `jwk`), and `iss`, `aud`, `sub`, `iat` and `exp` are all required.
package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"k8s.io/utils/clock"
)

// ErrInvalidToken wraps every verification failure, so callers answer 401 with one check.
// The wrapped reason (expired, bad signature…) is one of a fixed set of messages: it never
// echoes what the client sent.
var ErrInvalidToken = errors.New("invalid token")

// tokenType is the JWT "typ" header of an access token (RFC 9068 section 2.1).
const tokenType = "at+jwt"

// maxTokenLen bounds a token before any parsing; ours are about 400 bytes.
const maxTokenLen = 4 << 10

// Limits on what Issue puts into a token, so every token stays far below maxTokenLen.
const (
	maxPlayerLen = 128
	maxNameLen   = 256
)

// Reasons a token is refused, beyond those the jwt package reports. Each is its own
// sentinel so tests can tell which check refused a token.
var (
	errTooLong        = errors.New("token too long")
	errBadAlg         = errors.New("token algorithm is not EdDSA")
	errBadType        = errors.New(`token typ is not "at+jwt"`)
	errCritical       = errors.New("token has critical header extensions")
	errBadKeyID       = errors.New("token kid is missing or malformed")
	errUnknownKey     = errors.New("token kid names no known key")
	errNoSubject      = errors.New("token has no subject")
	errNoIssuedAt     = errors.New("token has no iat")
	errIssuedInFuture = errors.New("token iat is in the future")
	errRejected       = errors.New("token rejected")
)

// reasons lists, most specific first, the causes Verify reports; anything else is errRejected.
var reasons = []error{
	errTooLong, errBadAlg, errBadType, errCritical, errBadKeyID, errUnknownKey,
	jwt.ErrTokenMalformed, jwt.ErrTokenSignatureInvalid,
	jwt.ErrTokenExpired, jwt.ErrTokenNotValidYet,
	jwt.ErrTokenInvalidIssuer, jwt.ErrTokenInvalidAudience, jwt.ErrTokenRequiredClaimMissing,
	errNoSubject, errNoIssuedAt, errIssuedInFuture,
	jwt.ErrTokenUnverifiable,
}

// invalid turns any verification error into ErrInvalidToken wrapping one fixed reason, dropping
// the original text so nothing the client sent ends up in logs or answers.
func invalid(err error) error {
	for _, r := range reasons {
		if errors.Is(err, r) {
			return fmt.Errorf("%w: %w", ErrInvalidToken, r)
		}
	}
	return fmt.Errorf("%w: %w", ErrInvalidToken, errRejected)
}

// Config tunes token issuing and verification. Zero fields take the documented defaults
// (SetDefaults); negative durations are invalid.
type Config struct {
	// Issuer is the "iss" claim written and required. Default "usher".
	Issuer string
	// Audience is the "aud" claim written and required. Default "usher-players".
	Audience string
	// TTL is how long a token lives. Default 30m; valid 1s..24h.
	TTL time.Duration
	// Leeway is the clock skew tolerated on "exp" and "nbf". Default 30s; valid up to 5m.
	Leeway time.Duration
	// MaxIssuedAtSkew is how far in the future "iat" may be (another replica's clock running
	// ahead). Default 1m; valid up to 10m.
	MaxIssuedAtSkew time.Duration
	// VerifyCacheSize is how many verified tokens Verify remembers, so that a token presented
	// again skips the signature check. Default 65536; -1 turns the cache off; valid -1 or
	// 1..1048576.
	VerifyCacheSize int
}

// maxVerifyCacheSize bounds Config.VerifyCacheSize. An entry takes roughly 350 bytes of heap
// (claims, key and map overhead), so the default holds about 22 MB when full and the maximum
// about 350 MB.
const maxVerifyCacheSize = 1 << 20

// SetDefaults fills the zero fields of c with their defaults.
func (c *Config) SetDefaults() {
	if c.Issuer == "" {
		c.Issuer = "usher"
	}
	if c.Audience == "" {
		c.Audience = "usher-players"
	}
	if c.TTL == 0 {
		c.TTL = 30 * time.Minute
	}
	if c.Leeway == 0 {
		c.Leeway = 30 * time.Second
	}
	if c.MaxIssuedAtSkew == 0 {
		c.MaxIssuedAtSkew = time.Minute
	}
	if c.VerifyCacheSize == 0 {
		c.VerifyCacheSize = 1 << 16
	}
}

// Validate reports the first field of c that is out of range.
func (c Config) Validate() error {
	switch {
	case c.Issuer == "" || len(c.Issuer) > 256:
		return fmt.Errorf("auth: issuer must be 1 to 256 bytes, got %d", len(c.Issuer))
	case c.Audience == "" || len(c.Audience) > 256:
		return fmt.Errorf("auth: audience must be 1 to 256 bytes, got %d", len(c.Audience))
	case c.TTL < time.Second || c.TTL > 24*time.Hour:
		return fmt.Errorf("auth: ttl must be between 1s and 24h, got %s", c.TTL)
	case c.Leeway < 0 || c.Leeway > 5*time.Minute:
		return fmt.Errorf("auth: leeway must be between 0 and 5m, got %s", c.Leeway)
	case c.MaxIssuedAtSkew < 0 || c.MaxIssuedAtSkew > 10*time.Minute:
		return fmt.Errorf("auth: max issued-at skew must be between 0 and 10m, got %s", c.MaxIssuedAtSkew)
	case c.VerifyCacheSize != -1 && (c.VerifyCacheSize < 1 || c.VerifyCacheSize > maxVerifyCacheSize):
		return fmt.Errorf("auth: verify cache size must be -1 (off) or 1 to %d, got %d", maxVerifyCacheSize, c.VerifyCacheSize)
	}
	return nil
}

// Claims is what a verified token says about its bearer.
type Claims struct {
	Player    string // "sub": the player id
	Name      string // "name": display name, possibly empty
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// tokenClaims is the JWT payload. Audience shadows the embedded RegisteredClaims.Audience so
// "aud" is written as a single string (the jwt package would write an array) and read back
// only as one.
type tokenClaims struct {
	jwt.RegisteredClaims
	Audience string `json:"aud,omitempty"`
	Name     string `json:"name,omitempty"`
}

// GetAudience feeds the shadowing Audience to the jwt package's audience check.
func (c tokenClaims) GetAudience() (jwt.ClaimStrings, error) {
	if c.Audience == "" {
		return nil, nil
	}
	return jwt.ClaimStrings{c.Audience}, nil
}

// Tokens issues tokens with its first key and verifies them with any of its keys.
// It is safe for concurrent use.
type Tokens struct {
	cfg    Config
	signer Key
	keys   map[string]ed25519.PublicKey // by kid
	parser *jwt.Parser
	clk    clock.PassiveClock
	// cache remembers verified tokens; nil when cfg.VerifyCacheSize is -1. It is sound only
	// because keys and cfg never change after New: see Verify.
	cache *verifyCache
}

// New returns Tokens that sign with keys[0] and accept tokens signed by any of keys. To rotate,
// put the new key first and keep the retired one in the list until the tokens it signed have
// expired (TTL plus Leeway), then drop it. A key with an empty ID is named by KeyID. cfg's zero
// fields take their defaults; a nil clk means the real clock.
func New(cfg Config, keys []Key, clk clock.PassiveClock) (*Tokens, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: no signing keys")
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	t := &Tokens{cfg: cfg, keys: make(map[string]ed25519.PublicKey, len(keys)), clk: clk}
	for i, k := range keys {
		if len(k.Private) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("auth: key %d: not an Ed25519 private key (%d bytes)", i, len(k.Private))
		}
		pub := k.Private.Public().(ed25519.PublicKey)
		if k.ID == "" {
			k.ID = KeyID(pub)
		}
		if !validKeyID(k.ID) {
			return nil, fmt.Errorf("auth: key %d: id %q must be 1 to %d characters of [A-Za-z0-9_-]", i, truncate(k.ID, maxKeyIDLen), maxKeyIDLen)
		}
		if _, dup := t.keys[k.ID]; dup {
			return nil, fmt.Errorf("auth: key %d: id %q used twice", i, k.ID)
		}
		t.keys[k.ID] = pub
		if i == 0 {
			t.signer = k
		}
	}
	// iat is checked by Verify against MaxIssuedAtSkew rather than with jwt.WithIssuedAt, which
	// would bound it by Leeway instead (and would not require it).
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(clk.Now),
		jwt.WithStrictDecoding(),
	)
	if cfg.VerifyCacheSize > 0 {
		t.cache = newVerifyCache(cfg.VerifyCacheSize)
	}
	return t, nil
}

// Issue signs a token for player (an id from NewPlayerID) with display name name, valid for the
// configured TTL from now, and returns it with its expiry.
func (t *Tokens) Issue(player, name string) (token string, expiresAt time.Time, err error) {
	switch {
	case player == "":
		return "", time.Time{}, errors.New("issue token: empty player id")
	case len(player) > maxPlayerLen:
		return "", time.Time{}, fmt.Errorf("issue token: player id longer than %d bytes", maxPlayerLen)
	case len(name) > maxNameLen:
		return "", time.Time{}, fmt.Errorf("issue token: name longer than %d bytes", maxNameLen)
	}
	// JWT times have whole seconds; truncate first so the expiry we return is the one in the token.
	now := t.clk.Now().Truncate(time.Second)
	exp := now.Add(t.cfg.TTL)
	var jti [16]byte
	_, _ = rand.Read(jti[:]) // never fails (crypto/rand crashes the program instead)
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.cfg.Issuer,
			Subject:   player,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
		},
		Audience: t.cfg.Audience,
		Name:     name,
	})
	tok.Header["typ"] = tokenType
	tok.Header["kid"] = t.signer.ID
	s, err := tok.SignedString(t.signer.Private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue token: %w", err)
	}
	return s, exp, nil
}

// Verify checks token's signature, header and claims and returns what it says. Every failure
// wraps ErrInvalidToken.
//
// A token that passes is remembered (up to Config.VerifyCacheSize tokens), and when it comes
// again only the checks that depend on the time are repeated, which saves the Ed25519
// verification. That is sound because nothing else can change the outcome: a token's bytes are
// fixed, and so are the keys and the Config, set once by New. The time checks are those of the
// full path, with the same clock, rules and Leeway (inTime), so a remembered token is accepted
// exactly while full verification would accept it. Once it fails them it is forgotten and
// verified in full, which refuses it with the usual reason. Refused tokens are never remembered.
func (t *Tokens) Verify(token string) (Claims, error) {
	if len(token) > maxTokenLen {
		return Claims{}, invalid(errTooLong)
	}
	if t.cache == nil {
		e, err := t.verify(token)
		return e.claims, err
	}
	k := keyOf(token)
	if e, ok := t.cache.get(k); ok {
		if t.inTime(e, t.clk.Now()) {
			return e.claims, nil
		}
		t.cache.remove(k)
	}
	e, err := t.verify(token)
	if err != nil {
		return Claims{}, err
	}
	t.cache.add(k, e)
	return e.claims, nil
}

// verify is Verify without the cache: it runs every check.
func (t *Tokens) verify(token string) (cacheEntry, error) {
	var c tokenClaims
	if _, err := t.parser.ParseWithClaims(token, &c, t.keyFor); err != nil {
		return cacheEntry{}, invalid(err)
	}
	switch {
	case c.Subject == "":
		return cacheEntry{}, invalid(errNoSubject)
	case c.IssuedAt == nil:
		return cacheEntry{}, invalid(errNoIssuedAt)
	case c.IssuedAt.After(t.clk.Now().Add(t.cfg.MaxIssuedAtSkew)):
		return cacheEntry{}, invalid(errIssuedInFuture)
	}
	e := cacheEntry{claims: Claims{Player: c.Subject, Name: c.Name, IssuedAt: c.IssuedAt.Time, ExpiresAt: c.ExpiresAt.Time}}
	if c.NotBefore != nil {
		e.notBefore, e.hasNBF = c.NotBefore.Time, true
	}
	return e, nil
}

// inTime reports whether the time checks of full verification pass at now for a token that
// passed all the others. The expressions are the same: exp and nbf as the jwt package's
// Validator checks them with the parser's leeway (WithLeeway(cfg.Leeway)), iat as verify does.
func (t *Tokens) inTime(e cacheEntry, now time.Time) bool {
	return now.Before(e.claims.ExpiresAt.Add(t.cfg.Leeway)) &&
		(!e.hasNBF || !now.Before(e.notBefore.Add(-t.cfg.Leeway))) &&
		!e.claims.IssuedAt.After(now.Add(t.cfg.MaxIssuedAtSkew))
}

// keyFor is the jwt.Keyfunc: it checks the header and picks the verification key by kid from
// the configured keys only. It never fetches anything: jku, x5u and jwk are not even read.
func (t *Tokens) keyFor(tok *jwt.Token) (any, error) {
	// The parser's WithValidMethods already refuses other algorithms; this is the second lock
	// on the same door, so a future change of parser options cannot open it.
	if tok.Method != jwt.SigningMethodEdDSA {
		return nil, errBadAlg
	}
	if typ, _ := tok.Header["typ"].(string); typ != tokenType {
		return nil, errBadType
	}
	if _, ok := tok.Header["crit"]; ok {
		return nil, errCritical // RFC 7515 4.1.11: we understand no extensions
	}
	kid, _ := tok.Header["kid"].(string)
	if !validKeyID(kid) {
		return nil, errBadKeyID
	}
	pub, ok := t.keys[kid]
	if !ok {
		return nil, errUnknownKey
	}
	return pub, nil
}
