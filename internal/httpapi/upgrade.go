package httpapi

import (
	"encoding/base64"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// wsVersion is the only WebSocket protocol version there is (RFC 6455).
const wsVersion = "13"

// checkUpgrade refuses a /connect request that is not a complete RFC 6455 opening handshake
// (§4.1, §4.2.1): HTTP/1.1 (or later), GET, "Upgrade: websocket", a Connection header whose
// comma-separated tokens include "upgrade", "Sec-WebSocket-Version: 13" and a
// Sec-WebSocket-Key that is the base64 of exactly 16 bytes. It runs before the ticket is
// looked at, so a broken handshake never spends a ticket or reaches the game server.
// A wrong version is answered with Sec-WebSocket-Version: 13 (§4.4).
func checkUpgrade(c *fiber.Ctx) *Error {
	h := &c.Request().Header
	if !h.IsHTTP11() {
		return invalid("a WebSocket upgrade needs HTTP/1.1")
	}
	if c.Method() != fiber.MethodGet {
		return invalid("a WebSocket upgrade must be a GET")
	}
	// Header lines may repeat; fasthttp's Peek sees only the first, so read them all.
	var upgrade, connection, version, key []string
	h.VisitAll(func(k, v []byte) {
		switch {
		case strings.EqualFold(string(k), fiber.HeaderUpgrade):
			upgrade = append(upgrade, string(v))
		case strings.EqualFold(string(k), fiber.HeaderConnection):
			connection = append(connection, string(v))
		case strings.EqualFold(string(k), fiber.HeaderSecWebSocketVersion):
			version = append(version, string(v))
		case strings.EqualFold(string(k), fiber.HeaderSecWebSocketKey):
			key = append(key, string(v))
		}
	})
	if !hasToken(upgrade, "websocket") || !hasToken(connection, "upgrade") {
		return invalid("expected a WebSocket upgrade (GET with Upgrade: websocket and Connection: Upgrade)")
	}
	if len(version) != 1 || strings.TrimSpace(version[0]) != wsVersion {
		c.Set(fiber.HeaderSecWebSocketVersion, wsVersion)
		return invalid("a WebSocket upgrade needs Sec-WebSocket-Version: 13")
	}
	if len(key) != 1 || !validKey(strings.TrimSpace(key[0])) {
		return invalid("a WebSocket upgrade needs a Sec-WebSocket-Key: the base64 of 16 random bytes")
	}
	return nil
}

// hasToken reports whether any of the header values, each a comma-separated list of tokens,
// holds token (compared case-insensitively).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// validKey reports whether k is the padded standard base64 of exactly 16 bytes (24 characters),
// in its one canonical spelling.
func validKey(k string) bool {
	if len(k) != 24 {
		return false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(k)
	return err == nil && len(b) == 16
}
