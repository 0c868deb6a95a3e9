// Package play is `usher play`: a terminal client that gets a token, joins a room, connects,
// prints each message it receives and sends each line typed on stdin, so trying Usher (or
// scripting it) needs nothing but the usher binary.
package play

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fasthttp/websocket"
)

// Config is what `usher play` is told on its command line.
type Config struct {
	URL    string // Usher's public API, e.g. http://127.0.0.1:8080
	Name   string // display name; empty: Usher names the player Guest-XXXX
	Game   string // game id; empty: the first game of GET /games
	Room   string // join the room with this code
	Quick  bool   // join any open public room (or make one)
	Public bool   // when creating: list the room for quick match
}

// Flags registers c's fields on fs.
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "Usher's public API")
	fs.StringVar(&c.Name, "name", "", "your display name (default: Guest-XXXX)")
	fs.StringVar(&c.Game, "game", "", "game id (default: the first game Usher lists)")
	fs.StringVar(&c.Room, "room", "", "join the room with this code (default: create a room)")
	fs.BoolVar(&c.Quick, "quick", false, "join any open public room with a free seat, or create one")
	fs.BoolVar(&c.Public, "public", false, "when creating a room, list it for --quick players")
}

// Validate checks the combination of flags.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url must be an http:// or https:// address, got %q", c.URL)
	}
	if c.Room != "" && c.Quick {
		return errors.New("give --room or --quick, not both")
	}
	if c.Public && (c.Room != "" || c.Quick) {
		return errors.New("--public applies when creating a room (neither --room nor --quick)")
	}
	return nil
}

// APIError is an error answer of Usher's API: {"error": {"code", "message"}}.
type APIError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter string // the Retry-After header, if any
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.Status)
	if e.RetryAfter != "" {
		s += "; retry after " + e.RetryAfter + "s"
	}
	return s
}

// CloseError is how a session ended when the other side closed it: the close code and reason
// Usher sent. Run returns it for any close but a normal one (1000) or a going-away (1001).
type CloseError struct {
	Code int
	Text string
}

func (e *CloseError) Error() string { return fmt.Sprintf("closed: %d %s", e.Code, e.Text) }

// Client talks to one Usher.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a Client for the API at base (http or https).
func NewClient(base string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 30 * time.Second}}
}

// Token is the answer of POST /request_token.
type Token struct {
	Token    string `json:"token"`
	PlayerID string `json:"player_id"`
	Name     string `json:"name"`
}

// Joined is the answer of POST /join.
type Joined struct {
	Room       string `json:"room"`
	Ticket     string `json:"ticket"`
	ConnectURL string `json:"connect_url"`
	Game       string `json:"game"`
	MaxPlayers int    `json:"max_players"`
}

// Game is one entry of GET /games.
type Game struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	MaxPlayers int    `json:"max_players"`
	Rooms      int    `json:"rooms"`
	Players    int    `json:"players"`
}

// call sends a JSON request and decodes a JSON answer, turning error answers into *APIError.
func (c *Client) call(ctx context.Context, method, path, bearer string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error.Code == "" {
			return &APIError{Status: resp.StatusCode, Code: "http_error", Message: strings.TrimSpace(string(raw))}
		}
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, RetryAfter: resp.Header.Get("Retry-After")}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
	}
	return nil
}

// Games lists the games.
func (c *Client) Games(ctx context.Context) ([]Game, error) {
	var out struct {
		Games []Game `json:"games"`
	}
	err := c.call(ctx, http.MethodGet, "/games", "", nil, &out)
	return out.Games, err
}

// RequestToken gets a token for a new player called name ("" lets Usher pick).
func (c *Client) RequestToken(ctx context.Context, name string) (Token, error) {
	var in any = struct{}{}
	if name != "" {
		in = map[string]string{"name": name}
	}
	var t Token
	err := c.call(ctx, http.MethodPost, "/request_token", "", in, &t)
	return t, err
}

// Join creates a room, joins one by code (room) or quick matches (quick).
func (c *Client) Join(ctx context.Context, token, game, room string, quick, public bool) (Joined, error) {
	in := map[string]any{"game": game}
	switch {
	case room != "":
		in["room"] = room
	case quick:
		in["quick"] = true
	case public:
		in["public"] = true
	}
	var j Joined
	err := c.call(ctx, http.MethodPost, "/join", token, in, &j)
	return j, err
}

// Dial opens the WebSocket of a join's connect_url.
func (c *Client) Dial(ctx context.Context, connectURL string) (*websocket.Conn, error) {
	u, err := url.Parse(c.base)
	if err != nil {
		return nil, err
	}
	ref, err := url.Parse(connectURL)
	if err != nil {
		return nil, err
	}
	u = u.ResolveReference(ref)
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.DialContext(ctx, u.String(), nil)
	if err != nil {
		if resp != nil {
			defer resp.Body.Close()
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
				return nil, &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
			}
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	return ws, nil
}

// closeWait is how long Run waits for the answer to its close frame.
const closeWait = 2 * time.Second

// Run plays one session: token, join, connect, then relay lines until ctx is done (Ctrl-C),
// stdin ends, or Usher closes the session. Received messages go to out, one per line; what
// happens (room, players, the close) goes to info. It returns nil after a clean end, a
// *CloseError when Usher closed the session with another code than 1000 or 1001, or the error
// that stopped it (an *APIError for a refused request).
func Run(ctx context.Context, cfg Config, in io.Reader, out, info io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	c := NewClient(cfg.URL)
	game := cfg.Game
	if game == "" {
		games, err := c.Games(ctx)
		if err != nil {
			return fmt.Errorf("list games: %w", err)
		}
		if len(games) == 0 {
			return errors.New("this Usher lists no games")
		}
		game = games[0].ID
	}
	tok, err := c.RequestToken(ctx, cfg.Name)
	if err != nil {
		return fmt.Errorf("request token: %w", err)
	}
	j, err := c.Join(ctx, tok.Token, game, strings.ToUpper(strings.TrimSpace(cfg.Room)), cfg.Quick, cfg.Public)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	ws, err := c.Dial(ctx, j.ConnectURL)
	if err != nil {
		return err
	}
	defer ws.Close()
	fmt.Fprintf(info, "# %s (%s) in room %s of %s (up to %d players); type a line to send it, Ctrl-C to leave\n",
		tok.Name, tok.PlayerID, j.Room, j.Game, j.MaxPlayers)
	return relay(ctx, ws, in, out, info)
}

// relay prints what ws receives and sends what in holds, line by line.
func relay(ctx context.Context, ws *websocket.Conn, in io.Reader, out, info io.Writer) error {
	type closed struct {
		code int
		text string
		err  error
	}
	done := make(chan closed, 1)
	go func() {
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					done <- closed{code: ce.Code, text: ce.Text}
				} else {
					done <- closed{err: err}
				}
				return
			}
			fmt.Fprintf(out, "%s\n", msg)
		}
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()

	// leave sends our close and waits for Usher's answer (messages still arriving are printed).
	leave := func(why string) error {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, why), time.Now().Add(closeWait))
		select {
		case c := <-done:
			if c.err == nil {
				fmt.Fprintf(info, "# closed: %d %s\n", c.code, c.text)
			}
		case <-time.After(closeWait):
			fmt.Fprintln(info, "# closed (no answer to our close frame)")
		}
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return leave("bye")
		case line, ok := <-lines:
			if !ok {
				lines = nil // stdin ended: leave
				return leave("bye")
			}
			if err := ws.WriteMessage(websocket.TextMessage, []byte(line)); err != nil {
				c := <-done
				return report(c.code, c.text, c.err, info)
			}
		case c := <-done:
			return report(c.code, c.text, c.err, info)
		}
	}
}

// report shows how Usher ended the session and turns it into Run's result.
func report(code int, text string, err error, info io.Writer) error {
	if err != nil {
		return fmt.Errorf("connection lost: %w", err)
	}
	fmt.Fprintf(info, "# closed: %d %s\n", code, text)
	if code == websocket.CloseNormalClosure || code == websocket.CloseGoingAway {
		return nil
	}
	return &CloseError{Code: code, Text: text}
}

// Main is `usher play`: it parses args, runs a session until Ctrl-C (ctx), the end of stdin or
// Usher's close, and returns the exit code: 0 after a clean end, 1 when Usher refused or ended
// the session otherwise, 2 for bad flags.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var cfg Config
	fs := flag.NewFlagSet("usher play", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: usher play [--url U] [--name N] [--game G] [--room CODE | --quick | --public]\n\n"+
			"Joins a room and relays: each message received is printed on a line of stdout, each line\n"+
			"of stdin is sent as a text message. Ctrl-C (or the end of stdin) leaves the room.\n\n")
		fs.PrintDefaults()
	}
	cfg.Flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "usher play: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "usher play:", err)
		return 2
	}
	if err := Run(ctx, cfg, stdin, stdout, stderr); err != nil {
		var ce *CloseError
		if !errors.As(err, &ce) { // the close is already shown
			fmt.Fprintln(stderr, "usher play:", err)
		}
		return 1
	}
	return 0
}
