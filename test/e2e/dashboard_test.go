package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/agones/agonestest"
	"github.com/usher-gg/usher/internal/auth"
	"github.com/usher-gg/usher/internal/config"
)

const dashboardFile = "../../manifests/components/monitoring/usher-dashboard.json"

// TestDashboardQueriesNameExportedMetrics scrapes a running `usher dev` and a running `usher
// serve` (against a fake Agones) after a scripted session, and fails if any query of the
// Grafana dashboard names a metric neither exports, or if docs/metrics.md leaves one out.
func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	exported := map[string]bool{}
	for name := range scrape(t, devSession(t)) {
		exported[name] = true
	}
	for name := range scrape(t, serveSession(t)) {
		exported[name] = true
	}

	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	queries := dashboardQueries(dash)
	if len(queries) < 10 {
		t.Fatalf("found %d queries in the dashboard: the walk over its JSON is broken", len(queries))
	}
	used := map[string]bool{}
	for _, q := range queries {
		names := MetricNames(q)
		if len(names) == 0 {
			t.Errorf("query names no metric (or the extractor cannot read it): %s", q)
		}
		for _, n := range names {
			used[n] = true
			if !exported[n] {
				t.Errorf("query names %s, which Usher does not export: %s", n, q)
			}
		}
	}

	// Every metric Usher defines (usher_*) is documented.
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for n := range exported {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(n, "usher_") && !strings.Contains(string(doc), "`"+base+"`") {
			t.Errorf("docs/metrics.md does not list %s", base)
		}
	}
	t.Logf("%d queries over %d metrics, all exported", len(queries), len(used))
}

// devSession runs `usher dev` through a session that makes every kind of metric appear:
// tokens, joins (ok and refused), a rate-limited request, two connected players who
// exchange messages, one who leaves, and a refused ticket.
func devSession(t *testing.T) *harness {
	h := startUsher(t, func(c *config.Config) { c.TokenRate = 3 })
	alice, bob := h.token("Alice"), h.token("Bob")
	j := h.mustJoin(alice.Token, `{"game":"example"}`)
	if _, st, _ := h.join(bob.Token, `{"game":"example","room":"ZZZZ"}`); st != 404 {
		t.Fatalf("join of no room: %d", st)
	}
	jb := h.mustJoin(bob.Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room))
	a, b := h.mustDial(j.ConnectURL), h.mustDial(jb.ConnectURL)
	readMessage(t, a) // welcome
	readMessage(t, b)
	if err := a.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	for {
		if _, m := readMessage(t, b); string(m) == "hi" {
			break
		}
	}
	if _, st, _ := h.dial(j.ConnectURL, ""); st != 401 { // a used ticket
		t.Fatalf("replayed ticket: %d", st)
	}
	for range 3 { // TokenRate 3: the third in a row is refused
		h.do("POST", "/request_token", "", "", nil)
	}
	b.Close()
	eventually(t, 5*time.Second, func() error { // the game server saw Bob leave
		if n := h.app.Proxy.Sessions(); n != 1 {
			return fmt.Errorf("%d sessions", n)
		}
		return nil
	})
	// The room ends (as the admin page's "close room" does) and its game server exits.
	if err := h.app.Local.EndRoom(context.Background(), "example", j.Room); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		for _, s := range h.app.Local.Servers() {
			if s.Room == j.Room {
				return fmt.Errorf("the room's game server %s is still running (%s)", s.Name, s.State)
			}
		}
		return nil
	})
	return h
}

// serveSession runs `usher serve` against a fake Agones through one join, for the metrics
// only the Agones backend exports.
func serveSession(t *testing.T) *harness {
	fake := agonestest.NewServer(t)
	echo := startEcho(t)
	gs := agonestest.GameServer("usher-games", "example", "example-x7k2p-aaaaa", "ws", 4)
	gs.Status.Address = "127.0.0.1"
	gs.Status.Ports = []agones.GameServerStatusPort{{Name: "ws", Port: echo.port()}}
	fake.Add(gs)
	k, _ := auth.GenerateKey()
	keyPEM, _ := auth.MarshalKey(k)
	h := startServe(t, fake, keyPEM)
	h.mustJoin(h.token("Alice").Token, `{"game":"example"}`)
	return h
}

// scrape reads h's /metrics and returns the names of every sample (a histogram's
// _bucket, _sum and _count included).
func scrape(t *testing.T, h *harness) map[string]bool {
	t.Helper()
	resp, err := http.Get(h.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for name, f := range fams {
		if len(f.GetMetric()) == 0 {
			continue
		}
		out[name] = true
		switch f.GetType().String() {
		case "HISTOGRAM":
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case "SUMMARY":
			out[name+"_sum"], out[name+"_count"] = true, true
		}
	}
	return out
}

// dashboardQueries returns every PromQL expression in a Grafana dashboard: each target's
// expr and each query variable's query, wherever they nest (rows hold panels too).
func dashboardQueries(v any) []string {
	var out []string
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(c, k)
			}
		case []any:
			for _, c := range x {
				walk(c, key)
			}
		case string:
			if key == "expr" || key == "definition" {
				out = append(out, x)
			}
		}
	}
	walk(v, "")
	sort.Strings(out)
	return slices.Compact(out)
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	// by (…), without (…), on (…), ignoring (…), group_left (…), group_right (…) hold label names.
	promGrouping = regexp.MustCompile(`(?i)\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true,
	}
)

// MetricNames returns the metric names a PromQL expression (with Grafana variables) reads:
// identifiers that are not functions, aggregations, keywords, label names or inside strings.
func MetricNames(q string) []string {
	q = promString.ReplaceAllString(q, `""`)
	q = promMatchers.ReplaceAllString(q, " ")
	q = promRange.ReplaceAllString(q, " ")
	q = promGrouping.ReplaceAllString(q, " ")
	q = regexp.MustCompile(`\$\{?\w+\}?`).ReplaceAllString(q, " ") // Grafana variables
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(q, -1) {
		word := q[loc[0]:loc[1]]
		rest := strings.TrimLeft(q[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || promKeywords[strings.ToLower(word)] {
			continue // a function or aggregation call, or a keyword
		}
		if loc[0] > 0 && (q[loc[0]-1] >= '0' && q[loc[0]-1] <= '9' || q[loc[0]-1] == '.') {
			continue // the exponent or unit of a number (1e3, 5m)
		}
		// label_values(metric, label): the label is the second argument.
		if before := strings.TrimRight(q[:loc[0]], " \t"); strings.HasSuffix(before, ",") && strings.Contains(q[:loc[0]], "label_values(") {
			continue
		}
		names = append(names, word)
	}
	sort.Strings(names)
	return slices.Compact(names)
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		q    string
		want []string
	}{
		{`sum by (game) (usher_players{job=~"$job"})`, []string{"usher_players"}},
		{`histogram_quantile(0.99, sum by (le) (rate(usher_allocation_seconds_bucket{result="ok"}[$__rate_interval])))`, []string{"usher_allocation_seconds_bucket"}},
		{`sum(rate(a_total[5m])) / ignoring(x) group_left(y) b_total offset 1h`, []string{"a_total", "b_total"}},
		{`sum without (instance) (up{job="by (x)"}) > bool 1e3 and on(pod) c`, []string{"c", "up"}},
		{`label_values(usher_http_requests_total, job)`, []string{"usher_http_requests_total"}},
		{`rate(x{a="}"}[1m])`, []string{"x"}},
		{`topk(5, sum by (route, key) (rate(usher_rate_limited_total[$__rate_interval])))`, []string{"usher_rate_limited_total"}},
	}
	for _, tt := range tests {
		if got := MetricNames(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("MetricNames(%s) = %q, want %q", tt.q, got, tt.want)
		}
	}
}
