package browser

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fasthttp/websocket"

	"github.com/usher-gg/usher/internal/config"
	"github.com/usher-gg/usher/internal/devtest"
	"github.com/usher-gg/usher/internal/play"
)

// scripted is a player driven from Go through the same client as `usher play`.
type scripted struct {
	c  *play.Client
	t  play.Token
	j  play.Joined
	ws *websocket.Conn
}

// joinAs gets a token for name and joins with body's fields (room code or quick), without
// connecting.
func joinAs(tb testing.TB, u *devtest.Usher, name, room string, quick bool) *scripted {
	tb.Helper()
	ctx := context.Background()
	p := &scripted{c: play.NewClient(u.Base)}
	var err error
	if p.t, err = p.c.RequestToken(ctx, name); err != nil {
		tb.Fatalf("token for %s: %v", name, err)
	}
	if p.j, err = p.c.Join(ctx, p.t.Token, "example", room, quick, false); err != nil {
		tb.Fatalf("join for %s: %v", name, err)
	}
	return p
}

// connect opens the player's WebSocket and reads the welcome.
func (p *scripted) connect(tb testing.TB) {
	tb.Helper()
	ws, err := p.c.Dial(context.Background(), p.j.ConnectURL)
	if err != nil {
		tb.Fatalf("connect %s: %v", p.t.Name, err)
	}
	tb.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, m, err := ws.ReadMessage(); err != nil || !strings.Contains(string(m), `"welcome"`) {
		tb.Fatalf("%s: first message %q, %v", p.t.Name, m, err)
	}
	p.ws = ws
}

// TestPortalListsGamesLive opens the portal of a running usher dev: a card for the example
// game whose live counts change when a player joins, without reloading.
func TestPortalListsGamesLive(t *testing.T) {
	u := devtest.Start(t, nil)
	b := newBrowser(t)
	p := b.tab(t)
	p.do("open the portal", chromedp.Navigate(u.Base+"/"))
	p.waitJS("the example card", `document.querySelector('.game[data-game="example"] .players')?.textContent === "0 players online"`)
	if got := p.text(`.game[data-game="example"] .title`); got != "Example" {
		t.Errorf("card title %q", got)
	}
	if got := p.text(`.game[data-game="example"] .rooms`); got != "0 rooms" {
		t.Errorf("rooms %q, want 0 rooms", got)
	}

	alice := joinAs(t, u, "Alice", "", true)
	alice.connect(t)
	p.waitJS("1 player and 1 room on the card", `document.querySelector('.game[data-game="example"] .players').textContent === "1 player online" &&
		document.querySelector('.game[data-game="example"] .rooms').textContent === "1 room"`)
	p.shoot("portal")
}

// TestTwoPlayersChatThroughPortal: Alice creates a room from the portal, Bob types its code
// (in lower case) into the portal, both land in the example game's page, see each other in
// the lobby and chat.
func TestTwoPlayersChatThroughPortal(t *testing.T) {
	u := devtest.Start(t, nil)
	b := newBrowser(t)

	alice := b.tab(t)
	alice.do("Alice opens the portal and creates a room", chromedp.Navigate(u.Base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`.game[data-game="example"] .create`)),
		chromedp.SendKeys(chromedp.CSS("#name"), "Alice"),
		chromedp.Click(chromedp.CSS(`.game[data-game="example"] .create`)))
	alice.waitJS("Alice connected", `location.pathname.endsWith("/example.html") && document.querySelector("#conn")?.textContent === "connected"`)
	room := alice.text("#room")
	if !regexp.MustCompile(`^[A-HJKMNP-Z2-9]{4,5}$`).MatchString(room) {
		t.Fatalf("room code %q", room)
	}

	bob := b.tab(t)
	bob.do("Bob joins by code", chromedp.Navigate(u.Base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`.game[data-game="example"] .code`)),
		chromedp.SendKeys(chromedp.CSS("#name"), "Bob"),
		chromedp.SendKeys(chromedp.CSS(`.game[data-game="example"] .code`), strings.ToLower(room)))
	if got := bob.eval(`document.querySelector('.game[data-game="example"] .code').value`); got != room {
		t.Errorf("typed code shows as %q, want it upper-cased to %q", got, room)
	}
	bob.do("Bob clicks Join", chromedp.Click(chromedp.CSS(`.game[data-game="example"] .join-btn`)))
	bob.waitJS("Bob connected", `document.querySelector("#conn")?.textContent === "connected"`)
	if got := bob.text("#room"); got != room {
		t.Errorf("Bob is in room %q, want %q", got, room)
	}

	alice.waitJS("Bob in Alice's lobby", `[...document.querySelectorAll("#players .pname")].some(e => e.textContent === "Bob")`)
	bob.waitJS("Alice in Bob's lobby", `[...document.querySelectorAll("#players .pname")].some(e => e.textContent === "Alice")`)
	bob.do("Bob says hello", chromedp.SendKeys(chromedp.CSS("#text"), "hello Alice!"), chromedp.Click(chromedp.CSS("#send")))
	alice.waitJS("Bob's message at Alice", `[...document.querySelectorAll("#messages li")].some(li => li.textContent === "Bob hello Alice!")`)
	alice.do("Alice answers", chromedp.SendKeys(chromedp.CSS("#text"), "hi Bob, welcome!"), chromedp.Click(chromedp.CSS("#send")))
	bob.waitJS("Alice's answer at Bob", `[...document.querySelectorAll("#messages li")].some(li => li.textContent === "Alice hi Bob, welcome!")`)
	alice.shoot("game")

	// Nothing secret reached the log: no token, no ticket.
	tok := alice.eval(`JSON.parse(sessionStorage.getItem("usher.session")).token`)
	if tok == "" || strings.Contains(u.Log.String(), tok) {
		t.Errorf("the player's token (%d chars) is in Usher's log", len(tok))
	}
}

// TestPortalErrors renders every error a player can meet, in words.
func TestPortalErrors(t *testing.T) {
	b := newBrowser(t)
	card := `.game[data-game="example"]`
	errorText := func(p *tab) string {
		p.waitJS("an error", `!document.querySelector('`+card+` .error').hidden`)
		return p.text(card + " .error")
	}
	open := func(t *testing.T, u *devtest.Usher) *tab {
		p := b.tab(t)
		p.do("open the portal", chromedp.Navigate(u.Base+"/"), chromedp.WaitVisible(chromedp.CSS(card+" .code")))
		return p
	}
	join := func(p *tab, code string) {
		p.eval(`document.querySelector('` + card + ` .code').value = ""`)
		p.do("join "+code, chromedp.SendKeys(chromedp.CSS(card+" .code"), code), chromedp.Click(chromedp.CSS(card+" .join-btn")))
	}

	t.Run("look-alike and malformed codes", func(t *testing.T) {
		u := devtest.Start(t, nil)
		p := open(t, u)
		p.do("type a code with O", chromedp.SendKeys(chromedp.CSS(card+" .code"), "k7qo"))
		if got := errorText(p); !strings.Contains(got, "never contain O or 0") {
			t.Errorf("look-alike O: %q", got)
		}
		p.shoot("portal-error-lookalike")
		join(p, "AB")
		if got := errorText(p); !strings.Contains(got, "4 or 5 characters") {
			t.Errorf("short code: %q", got)
		}
	})
	t.Run("room not found", func(t *testing.T) {
		u := devtest.Start(t, nil)
		p := open(t, u)
		join(p, "ZZZZ")
		if got := errorText(p); got != "There is no room ZZZZ. Check the code: the room may have ended." {
			t.Errorf("not found: %q", got)
		}
	})
	t.Run("room full", func(t *testing.T) {
		u := devtest.Start(t, nil)
		// Connected, or the example server ends the room as empty after 3s.
		host := joinAs(t, u, "Host", "", false)
		host.connect(t)
		for _, n := range []string{"P2", "P3", "P4"} {
			joinAs(t, u, n, host.j.Room, false).connect(t) // the room holds 4
		}
		p := open(t, u)
		join(p, host.j.Room)
		if got := errorText(p); !strings.Contains(got, "Room "+host.j.Room+" is full") {
			t.Errorf("full: %q", got)
		}
	})
	t.Run("rate limited", func(t *testing.T) {
		u := devtest.Start(t, func(c *config.Config) { c.CreateRate = 1 })
		p := open(t, u)
		p.do("create", chromedp.Click(chromedp.CSS(card+" .create")))
		p.waitJS("on the game page", `location.pathname.endsWith("/example.html")`)
		p.do("back, create again", chromedp.Navigate(u.Base+"/"), chromedp.WaitVisible(chromedp.CSS(card+" .create")),
			chromedp.Click(chromedp.CSS(card+" .create")))
		got := errorText(p)
		if !regexp.MustCompile(`^Too many tries\. Please wait \d+ seconds? and try again\.$`).MatchString(got) {
			t.Errorf("rate limited: %q", got)
		}
		if dis := p.eval(`String(document.querySelector('` + card + ` .create').disabled)`); dis != "true" {
			t.Errorf("create button enabled during the wait")
		}
		p.shoot("portal-error-ratelimited")
	})
	t.Run("no capacity", func(t *testing.T) {
		u := devtest.Start(t, func(c *config.Config) {
			c.Games[0].Buffer, c.Games[0].MaxServers = 1, 1
			c.AllocationWait = 300 * time.Millisecond
		})
		joinAs(t, u, "Host", "", false).connect(t) // takes the only game server (and keeps its room alive)
		p := open(t, u)
		p.do("create", chromedp.Click(chromedp.CSS(card+" .create")))
		if got := errorText(p); got != "Every game server is busy right now. Try again in a few seconds." {
			t.Errorf("no capacity: %q", got)
		}
	})
}
