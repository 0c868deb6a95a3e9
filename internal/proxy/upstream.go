package proxy

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usher-gg/usher/contract"
)

// Upstream is a WebSocket connection to a game server, dialled for one player by Dial and
// consumed by Upgrade.
type Upstream struct {
	target Target
	leg    leg
	used   atomic.Bool // handed to Upgrade
	once   sync.Once
}

// Close closes the connection to the game server, with close 1001 "client did not connect".
// Call it when the player will not be upgraded after all. It is safe to call more than once;
// Upgrade calls it itself when the upgrade fails. Once a session relays the connection, the
// session owns it: with the event-loop relay Close then does nothing; with the goroutine relay
// it ends the session as if the game server had gone.
func (u *Upstream) Close() error {
	var err error
	u.once.Do(func() {
		_ = u.leg.writeClose(closeGoingAway, "client did not connect", min(u.leg.p.cfg.WriteTimeout, u.leg.p.cfg.CloseGrace))
		err = u.leg.nc.Close()
	})
	return err
}

// Dial connects to the game server at t.Addr and performs the WebSocket handshake for
// ws://Addr/?usher_player=…&usher_name=…&usher_room=…, with the same values in the
// X-Usher-Player, X-Usher-Name and X-Usher-Room headers. TCP connection and handshake together
// are bounded by DialTimeout (and ctx). Dial copies t's strings.
func (p *Proxy) Dial(ctx context.Context, t Target) (*Upstream, error) {
	if p.isClosing() {
		return nil, ErrShuttingDown
	}
	if t.Addr == "" {
		return nil, errors.New("dial game server: empty address")
	}
	for _, v := range [...]string{t.Player, t.Name, t.Room} {
		if !validHeaderValue(v) {
			return nil, fmt.Errorf("dial game server %s: player, name or room contains control characters", t.Addr)
		}
	}
	t = t.clone()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial game server %s: %w", t.Addr, err)
	}
	u := &Upstream{target: t}
	u.leg.init(p, sideServer, nc, true)
	if err := u.handshake(ctx); err != nil {
		_ = nc.Close()
		u.leg.releaseBuffers()
		return nil, fmt.Errorf("dial game server %s: %w", t.Addr, err)
	}
	return u, nil
}

// maxResponseBytes bounds the game server's handshake response.
const maxResponseBytes = 64 << 10

// websocketGUID is appended to the key to compute Sec-WebSocket-Accept (RFC 6455 section 4.2.2).
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// handshake performs the client side of the opening handshake on u.leg.nc.
func (u *Upstream) handshake(ctx context.Context) error {
	nc, t := u.leg.nc, u.target
	if deadline, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(err error) error {
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("handshake: %w", ctx.Err())
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The connection's deadline is ctx's: it may expire a moment before ctx does.
			return fmt.Errorf("handshake: %w", context.DeadlineExceeded)
		}
		return err
	}

	var raw [16]byte
	_, _ = crand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	q := url.Values{
		contract.QueryPlayer: {t.Player},
		contract.QueryName:   {t.Name},
		contract.QueryRoom:   {t.Room},
	}
	var b strings.Builder
	b.Grow(256 + len(t.Player)*2 + len(t.Name)*4 + len(t.Room)*2)
	b.WriteString("GET /?" + q.Encode() + " HTTP/1.1\r\n")
	b.WriteString("Host: " + t.Addr + "\r\n")
	b.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\n")
	b.WriteString("Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n")
	b.WriteString(contract.HeaderPlayer + ": " + t.Player + "\r\n")
	b.WriteString(contract.HeaderName + ": " + t.Name + "\r\n")
	b.WriteString(contract.HeaderRoom + ": " + t.Room + "\r\n\r\n")
	if _, err := io.WriteString(nc, b.String()); err != nil {
		return fail(fmt.Errorf("handshake: %w", err))
	}

	br := bufio.NewReaderSize(io.LimitReader(nc, maxResponseBytes), u.leg.p.cfg.ReadBufferSize)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fail(fmt.Errorf("handshake: read response: %w", err))
	}
	_ = resp.Body.Close()
	sum := sha1.Sum([]byte(key + websocketGUID))
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return fmt.Errorf("handshake: game server answered %q instead of 101 Switching Protocols", resp.Status)
	case !hasToken(resp.Header, "Upgrade", "websocket") || !hasToken(resp.Header, "Connection", "upgrade"):
		return errors.New("handshake: response lacks Upgrade: websocket / Connection: upgrade")
	case resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		return errors.New("handshake: wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-WebSocket-Extensions") != "":
		return errors.New("handshake: game server chose an extension Usher did not offer")
	case resp.Header.Get("Sec-WebSocket-Protocol") != "":
		return errors.New("handshake: game server chose a subprotocol Usher did not offer")
	}
	// A game server may send its first message right after the response; those bytes are the
	// start of the stream.
	if n := br.Buffered(); n > 0 {
		buffered, _ := br.Peek(n)
		u.leg.in = u.leg.p.inPool.get(u.leg.p.cfg.ReadBufferSize)
		u.leg.w = copy(u.leg.in.b, buffered)
	}
	if !stop() {
		return fail(ctx.Err())
	}
	_ = nc.SetDeadline(time.Time{})
	return nil
}

// hasToken reports whether a comma-separated header contains token (case-insensitively).
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// validHeaderValue rejects control characters, which could split the request.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7F {
			return false
		}
	}
	return true
}
