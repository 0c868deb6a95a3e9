package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/usher-gg/usher/internal/auth"
	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/proxy"
)

const claimsKey = "usher.claims"

// MaxNameRunes bounds a player's display name.
const MaxNameRunes = 32

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *Server) readyz(c *fiber.Ctx) error {
	if s.draining.Load() {
		return &Error{Status: fiber.StatusServiceUnavailable, Code: CodeUnavailable, Message: "shutting down"}
	}
	if s.Ready != nil {
		if why := s.Ready(c.UserContext()); why != "" {
			return &Error{Status: fiber.StatusServiceUnavailable, Code: CodeUnavailable, Message: "not ready: " + why}
		}
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

type gameJSON struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	MaxPlayers  int    `json:"max_players"`
	WebClient   string `json:"web_client,omitempty"`
	Rooms       int    `json:"rooms"`
	Players     int    `json:"players"`
}

func (s *Server) games(c *fiber.Ctx) error {
	games, err := s.Match.Games(c.UserContext())
	if err != nil {
		return err
	}
	out := make([]gameJSON, len(games))
	for i, g := range games {
		out[i] = gameJSON{ID: g.ID, Name: g.Name, Description: g.Description, MaxPlayers: g.MaxPlayers, WebClient: g.WebClient, Rooms: g.Rooms, Players: g.Players}
	}
	return c.JSON(fiber.Map{"games": out})
}

type tokenRequest struct {
	Name *string `json:"name"`
}

type tokenResponse struct {
	Token     string    `json:"token"`
	PlayerID  string    `json:"player_id"`
	Name      string    `json:"name"`
	ExpiresAt timestamp `json:"expires_at"`
}

// timestamp is how the API writes a time: RFC 3339 in UTC with whole seconds
// ("2026-11-26T12:00:00Z"), the same in every answer. Sub-second parts are cut off, so the
// time written is never later than the real one.
type timestamp time.Time

// MarshalJSON writes t as a JSON string in RFC 3339, UTC, whole seconds.
func (t timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Truncate(time.Second).Format(time.RFC3339) + `"`), nil
}

func (s *Server) requestToken(c *fiber.Ctx) error {
	var req tokenRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	player := auth.NewPlayerID()
	name := guestName(player)
	if req.Name != nil {
		n, err := cleanName(*req.Name)
		if err != nil {
			return err
		}
		if n != "" {
			name = n
		}
	}
	tok, exp, err := s.Tokens.Issue(player, name)
	if err != nil {
		return fmt.Errorf("issue token: %w", err)
	}
	s.Metrics.TokensIssued.Inc()
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(tokenResponse{Token: tok, PlayerID: player, Name: name, ExpiresAt: timestamp(exp)})
}

// authenticate verifies the bearer token and keeps the claims for the handler.
func (s *Server) authenticate(c *fiber.Ctx) error {
	tok, err := auth.ParseBearer(string(c.Request().Header.Peek(fiber.HeaderAuthorization)))
	if err != nil {
		return err
	}
	cl, err := s.Tokens.Verify(tok)
	if err != nil {
		return err
	}
	// Fiber reuses request memory; claims are fresh strings from the JWT parser.
	c.Locals(claimsKey, cl)
	return c.Next()
}

type joinRequest struct {
	Game *string `json:"game"`
	// Room is raw so that null, a number or an object are refused rather than read as "no
	// room" (which would create a room).
	Room   json.RawMessage `json:"room"`
	Quick  bool            `json:"quick"`
	Public bool            `json:"public"`
}

type joinResponse struct {
	Room       string    `json:"room"`
	Ticket     string    `json:"ticket"`
	ConnectURL string    `json:"connect_url"`
	ExpiresAt  timestamp `json:"expires_at"`
	Game       string    `json:"game"`
	MaxPlayers int       `json:"max_players"`
}

func (s *Server) join(c *fiber.Ctx) error {
	cl := c.Locals(claimsKey).(auth.Claims)
	var body joinRequest
	if err := decodeBody(c, &body, false); err != nil {
		return err
	}
	if body.Game == nil || *body.Game == "" {
		return invalid(`"game" is required, e.g. {"game": "example"}`)
	}
	req := match.JoinRequest{Game: *body.Game, Quick: body.Quick, Public: body.Public, Player: cl.Player, Name: cl.Name}
	if body.Room != nil {
		if body.Quick {
			return invalid(`give either "room" (join by code) or "quick": true, not both`)
		}
		if body.Public {
			return invalid(`"public" applies when creating a room, not when joining one by code`)
		}
		code, err := roomCode(body.Room)
		if err != nil {
			return err
		}
		req.Room = code
	}
	res, err := s.Match.Join(c.UserContext(), req)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(joinResponse{
		Room: res.Room, Ticket: res.Ticket, ConnectURL: "/connect?ticket=" + url.QueryEscape(res.Ticket),
		ExpiresAt: timestamp(res.ExpiresAt), Game: res.Game, MaxPlayers: res.MaxPlayers,
	})
}

// connect redeems a ticket and upgrades to a WebSocket relayed to the ticket's game server.
// Everything that can be refused is refused before the upgrade, with an HTTP error.
func (s *Server) connect(c *fiber.Ctx) error {
	if !s.Origins.Allowed(string(c.Request().Header.Peek(fiber.HeaderOrigin))) {
		s.Metrics.Connects.WithLabelValues("origin_forbidden").Inc()
		return &Error{Status: fiber.StatusForbidden, Code: CodeOriginForbidden, Message: "this Origin may not connect"}
	}
	// The whole handshake is checked before the ticket is looked at: a request the upgrader
	// would refuse must not spend the ticket or reach the game server.
	if e := checkUpgrade(c); e != nil {
		s.Metrics.Connects.WithLabelValues("not_websocket").Inc()
		return e
	}
	// Copy: the ticket outlives nothing here, but Fiber reuses request memory.
	t, err := s.Tickets.Redeem(c.UserContext(), strings.Clone(c.Query("ticket")))
	if err != nil {
		s.Metrics.TicketsRedeemed.WithLabelValues("invalid").Inc()
		s.Metrics.Connects.WithLabelValues("ticket_invalid").Inc()
		return err
	}
	// A player holds one room: a ticket for a room they have left since is stale.
	if h, ok, herr := s.Match.Holds(c.UserContext(), t.Player); herr == nil && ok && (h.Room != t.Room || h.Game != t.Game) {
		s.Metrics.TicketsRedeemed.WithLabelValues("invalid").Inc()
		s.Metrics.Connects.WithLabelValues("ticket_invalid").Inc()
		return &Error{Status: fiber.StatusUnauthorized, Code: CodeTicketInvalid,
			Message: "this ticket is for a room the player has left for another; join again"}
	}
	s.Metrics.TicketsRedeemed.WithLabelValues("ok").Inc()
	up, err := s.Proxy.Dial(c.UserContext(), proxy.Target{
		Addr: t.Addr, Player: t.Player, Name: t.Name, Room: t.Room, Game: t.Game, Server: t.Server,
	})
	if err != nil {
		s.Metrics.Connects.WithLabelValues("dial_failed").Inc()
		s.Log.Warn("dial game server failed", "game", t.Game, "room", t.Room, "gameserver", t.Server, "player", t.Player, "err", err)
		return &Error{Status: fiber.StatusBadGateway, Code: CodeServerUnavailable, Message: "the room's game server is not reachable; the room may have ended"}
	}
	if err := s.Proxy.Upgrade(c, up); err != nil {
		s.Metrics.Connects.WithLabelValues("upgrade_failed").Inc()
		return nil // the upgrader already answered the client
	}
	s.Metrics.Connects.WithLabelValues("ok").Inc()
	return nil
}

// decodeBody decodes a JSON object strictly: unknown fields, trailing data and wrong types are
// errors that name the problem. An empty body is allowed only when emptyOK.
func decodeBody(c *fiber.Ctx, v any, emptyOK bool) error {
	body := bytes.TrimSpace(c.Body())
	if len(body) == 0 {
		if emptyOK {
			return nil
		}
		return invalid("request body must be a JSON object")
	}
	// encoding/json turns invalid UTF-8 and lone surrogate escapes ("\ud800") into U+FFFD
	// without a word; refuse them instead.
	if !utf8.Valid(body) {
		return invalid("request body must be valid UTF-8")
	}
	if loneSurrogate(body) {
		return invalid(`request body must not contain lone UTF-16 surrogates (such as "\ud800")`)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return invalid(fmt.Sprintf("field %q must be a %s", te.Field, te.Type.Kind()))
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return invalid(strings.TrimPrefix(err.Error(), "json: "))
		default:
			return invalid("request body must be a JSON object")
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("request body must be a single JSON object")
	}
	return nil
}

// cleanName trims a display name and checks it: at most 32 characters, printable, no control
// or format characters (no bidi tricks).
func cleanName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxNameRunes {
		return "", invalid(fmt.Sprintf(`"name" must be at most %d characters`, MaxNameRunes))
	}
	for _, r := range s {
		if !unicode.IsPrint(r) && r != ' ' || unicode.Is(unicode.Cf, r) {
			return "", invalid(`"name" must contain only printable characters`)
		}
	}
	return s, nil
}

// guestName is the display name of a player who gave none: Guest-XXXX from the player id.
func guestName(player string) string {
	if len(player) < 4 {
		return "Guest"
	}
	return "Guest-" + strings.ToUpper(player[len(player)-4:])
}
