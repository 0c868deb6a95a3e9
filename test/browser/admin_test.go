package browser

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fasthttp/websocket"

	"github.com/usher-gg/usher/internal/devtest"
)

// TestAdminCredentials: the admin API refuses a missing or wrong token and takes the right
// one as HTTP Basic (any user) or Bearer; an action with Basic credentials needs the page's
// CSRF header; /metrics stays open for Prometheus.
func TestAdminCredentials(t *testing.T) {
	u := devtest.Start(t, nil)
	get := func(path string, set func(*http.Request)) int {
		req, _ := http.NewRequest("GET", u.Admin+path, nil)
		if set != nil {
			set(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: no Content-Security-Policy", path)
		}
		return resp.StatusCode
	}
	tests := []struct {
		name string
		set  func(*http.Request)
		want int
	}{
		{"none", nil, 401},
		{"wrong bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401},
		{"wrong basic", func(r *http.Request) { r.SetBasicAuth("admin", "nope") }, 401},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+u.Token) }, 200},
		{"basic, any user", func(r *http.Request) { r.SetBasicAuth("whoever", u.Token) }, 200},
	}
	for _, tt := range tests {
		if got := get("/api/state", tt.set); got != tt.want {
			t.Errorf("%s: /api/state %d, want %d", tt.name, got, tt.want)
		}
	}
	if got := get("/", nil); got != 401 {
		t.Errorf("page without credentials: %d, want 401 (the sign-in page)", got)
	}
	if got := get("/metrics", nil); got != 200 {
		t.Errorf("/metrics: %d, want 200 without a metrics token", got)
	}
	post := func(set func(*http.Request)) int {
		req, _ := http.NewRequest("POST", u.Admin+"/api/rooms/example/ZZZZ/close", nil)
		set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(func(r *http.Request) { r.SetBasicAuth("x", u.Token) }); got != 403 {
		t.Errorf("Basic action without the CSRF header: %d, want 403", got)
	}
	if got := post(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+u.Token) }); got != 404 {
		t.Errorf("Bearer action on no room: %d, want 404", got)
	}
}

// TestAdminPageLive: the page refuses a wrong token, signs in with the right one, shows a new
// room appear and its player count change live as scripted players join and leave, and
// "close room" (confirmed) disconnects the player left with close 4006. The action is in the
// log as an audit line without the token.
func TestAdminPageLive(t *testing.T) {
	u := devtest.Start(t, nil)
	b := newBrowser(t)
	p := b.tab(t)

	p.do("open the admin page", chromedp.Navigate(u.Admin+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	p.do("a wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"), chromedp.Submit(chromedp.CSS("#token")))
	p.waitJS("the refusal", `!document.querySelector("#refused").hidden`)
	p.shoot("admin-signin")
	p.do("sign in with the link usher dev prints", chromedp.Navigate(u.Admin+"/#token="+u.Token))
	p.waitJS("live", `document.querySelector("#live")?.textContent === "live"`)
	if got := p.text("#t-rooms"); got != "0" {
		t.Errorf("rooms %q, want 0", got)
	}

	alice := joinAs(t, u, "Alice", "", false)
	alice.connect(t)
	room := alice.j.Room
	row := `document.querySelector('#rooms tr[data-room="` + room + `"]')`
	p.waitJS("the new room", row+`?.querySelector(".connected")?.textContent === "1"`)
	bob := joinAs(t, u, "Bob", room, false)
	bob.connect(t)
	p.waitJS("two players", row+`.querySelector(".connected").textContent === "2" && `+row+`.querySelectorAll(".chip").length === 2`)
	if got := p.text("#t-players"); got != "2" {
		t.Errorf("players connected %q, want 2", got)
	}
	p.shoot("admin")
	bob.ws.Close()
	p.waitJS("one player again", row+`.querySelector(".connected").textContent === "1"`)

	p.do("close the room", chromedp.Click(chromedp.CSS(`#rooms tr[data-room="`+room+`"] .close-room`)))
	p.waitJS("the confirmation", `document.querySelector("#confirm").open`)
	if txt := p.text("#confirm-text"); !strings.Contains(txt, room) {
		t.Errorf("confirmation %q does not name the room", txt)
	}
	p.do("confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
	_ = alice.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ce *websocket.CloseError
	for {
		if _, _, err := alice.ws.ReadMessage(); err != nil {
			if !errors.As(err, &ce) || ce.Code != 4006 {
				t.Fatalf("Alice's session ended with %v, want close 4006", err)
			}
			break
		}
	}
	p.waitJS("the room gone", row+` === null`)

	log := u.Log.String()
	if !strings.Contains(log, `msg="admin action" component=admin action=close_room game=example room=`+room+` sessions=1`) {
		t.Errorf("no audit line for close_room in the log:\n%s", log)
	}
	for _, secret := range []string{u.Token, alice.t.Token, bob.t.Token, alice.j.Ticket, bob.j.Ticket} {
		if strings.Contains(log, secret) {
			t.Errorf("a token or ticket is in the log")
		}
	}
}
