package play_test

import (
	"bufio"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usher-gg/usher/internal/devtest"
	"github.com/usher-gg/usher/internal/play"
)

func TestMain(m *testing.M) { devtest.Main(m) }

// player is one `usher play` run: its stdin, and its stdout and stderr as line channels.
type player struct {
	in       *io.PipeWriter
	out, inf chan string
	code     chan int
	cancel   context.CancelFunc
}

func start(t *testing.T, args ...string) *player {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	infR, infW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	p := &player{in: inW, out: lines(outR), inf: lines(infR), code: make(chan int, 1), cancel: cancel}
	go func() {
		code := play.Main(ctx, args, inR, outW, infW)
		outW.Close()
		infW.Close()
		p.code <- code
	}()
	t.Cleanup(func() { cancel(); inW.Close() })
	return p
}

func lines(r io.Reader) chan string {
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// wait returns the first line of ch matching re.
func wait(t *testing.T, ch chan string, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(15 * time.Second)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("output ended before a line matching %q", re)
			}
			if rx.MatchString(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("no line matching %q within 15s", re)
		}
	}
}

func exitCode(t *testing.T, p *player) int {
	t.Helper()
	select {
	case c := <-p.code:
		return c
	case <-time.After(15 * time.Second):
		t.Fatal("usher play did not exit within 15s")
		return -1
	}
}

// Two terminal players: one creates a room, the other joins it by code (typed in lower
// case), a line typed by one is printed by the other, and both leave cleanly.
func TestTwoPlayersChat(t *testing.T) {
	u := devtest.Start(t, nil)
	alice := start(t, "--url", u.Base, "--name", "Alice")
	info := wait(t, alice.inf, `in room [A-Z0-9]{4,5} of example`)
	room := regexp.MustCompile(`in room ([A-Z0-9]{4,5})`).FindStringSubmatch(info)[1]
	wait(t, alice.out, `"type":"welcome"`)

	bob := start(t, "--url", u.Base, "--name", "Bob", "--game", "example", "--room", strings.ToLower(room))
	wait(t, bob.inf, "Bob .* in room "+room)
	wait(t, bob.out, `"type":"welcome"`)
	if _, err := io.WriteString(bob.in, "hello from bob\n"); err != nil {
		t.Fatal(err)
	}
	wait(t, alice.out, `^hello from bob$`)

	bob.in.Close() // the end of stdin leaves the room
	wait(t, bob.inf, `^# closed: 1000`)
	if c := exitCode(t, bob); c != 0 {
		t.Errorf("bob exit code %d, want 0", c)
	}
	alice.cancel() // Ctrl-C
	wait(t, alice.inf, `^# closed: 1000`)
	if c := exitCode(t, alice); c != 0 {
		t.Errorf("alice exit code %d, want 0", c)
	}
}

// A refused join is shown in words with its code, and exits 1.
func TestErrorsShown(t *testing.T) {
	u := devtest.Start(t, nil)
	tests := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--room", "ZZZZ"}, `join: room_not_found: no live room with that code in this game \(HTTP 404\)`, 1},
		{[]string{"--game", "nope"}, `join: unknown_game: .*\(HTTP 404\)`, 1},
		{[]string{"--room", "ZZ1I"}, `join: invalid_request: .*never contain 0, O, 1, I`, 1},
		{[]string{"--room", "ABCD", "--quick"}, `give --room or --quick, not both`, 2},
		{[]string{"--url", "ftp://x"}, `--url must be an http`, 2},
	}
	for _, tt := range tests {
		p := start(t, append([]string{"--url", u.Base}, tt.args...)...)
		wait(t, p.inf, tt.want)
		if c := exitCode(t, p); c != tt.code {
			t.Errorf("%q: exit code %d, want %d", tt.args, c, tt.code)
		}
	}
}

// A session Usher ends shows the close code and exits 1: here an operator closes the room.
func TestCloseCodeShown(t *testing.T) {
	u := devtest.Start(t, nil)
	p := start(t, "--url", u.Base, "--quick")
	info := wait(t, p.inf, `in room [A-Z0-9]{4,5} of example`)
	room := regexp.MustCompile(`in room ([A-Z0-9]{4,5})`).FindStringSubmatch(info)[1]
	wait(t, p.out, `"type":"welcome"`)
	devtest.Eventually(t, 5*time.Second, func() error {
		if n := u.App.Proxy.Remove("example", room, ""); n != 1 {
			return errNotYet
		}
		return nil
	})
	wait(t, p.inf, `^# closed: 4006 room closed by an operator$`)
	if c := exitCode(t, p); c != 1 {
		t.Errorf("exit code %d, want 1", c)
	}
}

var errNotYet = errorString("the session is not live yet")

type errorString string

func (e errorString) Error() string { return string(e) }
