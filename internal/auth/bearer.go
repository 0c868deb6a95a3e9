package auth

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
)

// maxAuthorizationLen bounds the Authorization header ParseBearer looks at.
const maxAuthorizationLen = 8 << 10

// ParseBearer returns the token of an "Authorization: Bearer <token>" header value (the scheme
// is case-insensitive, RFC 9110 section 11.1). A missing or oversized header, another scheme or
// an empty or malformed token gives an error wrapping ErrInvalidToken, found without copying or
// scanning more than the token itself.
func ParseBearer(authorization string) (string, error) {
	const scheme = "Bearer"
	switch {
	case authorization == "":
		return "", fmt.Errorf("%w: missing Authorization header", ErrInvalidToken)
	case len(authorization) > maxAuthorizationLen:
		return "", fmt.Errorf("%w: Authorization header too long", ErrInvalidToken)
	case len(authorization) <= len(scheme) || !strings.EqualFold(authorization[:len(scheme)], scheme) ||
		authorization[len(scheme)] != ' ':
		return "", fmt.Errorf("%w: Authorization scheme is not Bearer", ErrInvalidToken)
	}
	tok := strings.Trim(authorization[len(scheme):], " \t")
	if tok == "" {
		return "", fmt.Errorf("%w: empty bearer token", ErrInvalidToken)
	}
	if strings.ContainsAny(tok, " \t,") {
		return "", fmt.Errorf("%w: malformed bearer token", ErrInvalidToken)
	}
	return tok, nil
}

// playerIDEncoding is lowercase base32 without padding: ids are safe in URLs, logs and labels.
var playerIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewPlayerID returns a fresh random player id: "p_" and 20 lowercase base32 characters
// (100 bits from crypto/rand).
func NewPlayerID() string {
	var b [13]byte // 104 bits; 20 characters keep 100 of them
	_, _ = rand.Read(b[:])
	return "p_" + playerIDEncoding.EncodeToString(b[:])[:20]
}
