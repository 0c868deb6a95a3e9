package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usher-gg/usher/internal/godotpack"
	"github.com/usher-gg/usher/internal/godotweb"
)

// The snippets of docs/clients.md, each run against a real `usher dev` with
// http://localhost:8080 replaced by its address: curl in bash, JavaScript in headless Chromium,
// GDScript in the Godot web engine.

const docsBase = "http://localhost:8080"

// snippet returns the code block after "<!-- snippet: NAME -->" in docs/clients.md.
func snippet(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile("../../docs/clients.md")
	if err != nil {
		tb.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- snippet: " + regexp.QuoteMeta(name) + " -->\n```[a-z]*\n(.*?)```")
	m := re.FindSubmatch(b)
	if m == nil {
		tb.Fatalf("docs/clients.md has no snippet %q", name)
	}
	if !strings.Contains(string(m[1]), docsBase) {
		tb.Fatalf("snippet %q does not name %s", name, docsBase)
	}
	return string(m[1])
}

// need finds a command the test needs: missing, it skips locally and fails in CI.
func need(tb testing.TB, cmd string) {
	tb.Helper()
	if _, err := exec.LookPath(cmd); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is not installed (CI installs it in .ci/run)", cmd)
		}
		tb.Skipf("skipping: %s is not installed", cmd)
	}
}

// checkJoinWorks connects with a join's connect_url and expects the example server's welcome.
func checkJoinWorks(t *testing.T, h *harness, out string) {
	t.Helper()
	var jr joinResp
	if err := json.Unmarshal([]byte(out), &jr); err != nil || jr.ConnectURL == "" {
		t.Fatalf("the snippet printed %q, want a join", out)
	}
	c := h.mustDial(jr.ConnectURL)
	if w := readWelcome(t, c); w.Room != jr.Room {
		t.Errorf("welcome to room %q, want %q", w.Room, jr.Room)
	}
}

func TestClientsCurl(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	need(t, "bash")
	h := startUsher(t, nil)
	code := strings.ReplaceAll(snippet(t, "curl"), docsBase, h.base)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", code).Output()
	if err != nil {
		t.Fatalf("the curl snippet: %v\n%s", err, out)
	}
	checkJoinWorks(t, h, strings.TrimSpace(string(out)))
}

func TestClientsJavaScript(t *testing.T) {
	b := godotweb.ForTest(t)
	h := startUsher(t, nil)
	code := strings.ReplaceAll(snippet(t, "javascript"), docsBase, h.base)
	js := "(async () => {\n" + code + `
const { join, ws } = await play("example", "Alice");
const first = await new Promise((ok, bad) => {
  ws.onmessage = (e) => ok(e.data);
  ws.onerror = () => bad(new Error("websocket error"));
});
ws.close();
return JSON.stringify({ join, first: JSON.parse(first) });
})()`
	out, err := b.Eval(context.Background(), js, 30*time.Second)
	if err != nil {
		t.Fatalf("the JavaScript snippet: %v", err)
	}
	var got struct {
		Join  joinResp `json:"join"`
		First welcome  `json:"first"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("snippet result %q: %v", out, err)
	}
	if got.First.Type != "welcome" || got.First.Room != got.Join.Room || got.Join.Room == "" {
		t.Errorf("the snippet's first message = %+v for join %+v, want a welcome to that room", got.First, got.Join)
	}
}

func TestClientsGodot(t *testing.T) {
	h := startUsher(t, nil)
	code := strings.ReplaceAll(snippet(t, "godot"), docsBase, h.base)
	// The snippet's script, as the test: its own "extends Node" becomes the test base (a Node
	// too), and a run() calls its play().
	body, ok := strings.CutPrefix(code, "extends Node\n")
	if !ok {
		t.Fatalf("the GDScript snippet does not start with extends Node")
	}
	test := `extends "res://tests/test_case.gd"
## The GDScript snippet of docs/clients.md, run against usher dev.
` + body + `

func run() -> void:
	var ws := await play("example", "Alice")
	check(ws != null, "the snippet returns an open socket")
	if ws != null:
		var w: Variant = await next_message(ws)
		check(w is Dictionary and w["type"] == "welcome", "the example server's welcome: %s" % str(w))
`
	runGodot(t, "snippet", nil, nil, godotpack.Project{"tests/snippet_test.gd": []byte(test)})
}
