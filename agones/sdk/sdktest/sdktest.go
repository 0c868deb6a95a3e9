// Package sdktest is a fake Agones SDK sidecar HTTP gateway for tests, written from the SDK
// swagger files and the Agones reference (AGONES.md §5 and §7), like `sdk-server --local`
// but with the cluster's rules where they differ.
//
// It keeps one GameServer and answers like the real gateway: protobuf-JSON with snake_case
// keys, int64 values as strings and zero values emitted; request bodies in either key style
// with int64 as strings or numbers; 400 (code 3) for bad JSON and for an empty /health body;
// counter and list errors as HTTP 500 with code 2 and "not found" / "already exists" /
// "out of range" messages; a newline-delimited {"result": …} WatchGameServer stream with one
// line per change. State calls apply at once (as in local mode) and terminal states stay
// terminal (as in a cluster). List and counter changes apply at once, or wait for Flush with
// the Batched option, while the GET endpoints answer the projected value as the real sidecar
// does. Tests can patch the GameServer (Update, Allocate), read recorded calls and health
// pings, end or fail the watch streams, and start the server late or stop and restart it.
//
// It shares no code with package sdk, so a bug in one does not hide a bug in the other.
package sdktest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// GameServer is the fake's GameServer in plain Go values. Timestamps are Unix seconds.
type GameServer struct {
	Name              string
	Namespace         string
	UID               string
	Generation        int64
	CreationTimestamp int64
	DeletionTimestamp int64
	Labels            map[string]string
	Annotations       map[string]string
	Health            Health
	State             string
	Address           string
	Addresses         []Address
	Ports             []Port
	Counters          map[string]Counter
	Lists             map[string]List
}

// Health is spec.health.
type Health struct {
	Disabled            bool
	PeriodSeconds       int32
	FailureThreshold    int32
	InitialDelaySeconds int32
}

// Address is a status address.
type Address struct{ Type, Address string }

// Port is a status port.
type Port struct {
	Name string
	Port int32
}

// Counter is a status counter.
type Counter struct{ Count, Capacity int64 }

// List is a status list.
type List struct {
	Capacity int64
	Values   []string
}

// DefaultGameServer is a GameServer of a Fleet as the SDK sees it once its pod is scheduled:
// state Scheduled, Agones' default health settings, and an empty players list of capacity 8.
func DefaultGameServer() GameServer {
	return GameServer{
		Name:              "demo-ml6gc-55ngm",
		Namespace:         "default",
		UID:               "7c0d5a4e-0000-4000-8000-000000000001",
		Generation:        1,
		CreationTimestamp: 1767261600,
		Labels:            map[string]string{"agones.dev/fleet": "demo", "agones.dev/gameserverset": "demo-ml6gc"},
		Annotations:       map[string]string{"agones.dev/sdk-version": "1.57.0"},
		Health:            Health{PeriodSeconds: 5, FailureThreshold: 3, InitialDelaySeconds: 5},
		State:             "Scheduled",
		Address:           "10.0.0.5",
		Addresses:         []Address{{"InternalIP", "10.0.0.5"}, {"PodIP", "10.244.0.7"}},
		Ports:             []Port{{"ws", 7777}},
		Counters:          map[string]Counter{},
		Lists:             map[string]List{"players": {Capacity: 8, Values: []string{}}},
	}
}

func (g GameServer) clone() GameServer {
	c := g
	c.Labels = maps.Clone(g.Labels)
	c.Annotations = maps.Clone(g.Annotations)
	c.Addresses = slices.Clone(g.Addresses)
	c.Ports = slices.Clone(g.Ports)
	c.Counters = maps.Clone(g.Counters)
	c.Lists = make(map[string]List, len(g.Lists))
	for k, l := range g.Lists {
		c.Lists[k] = List{Capacity: l.Capacity, Values: slices.Clone(l.Values)}
	}
	return c
}

// Call is one request the fake received.
type Call struct {
	Method string
	Path   string
	Body   string
	At     time.Time
}

// Option configures a Server.
type Option func(*Server)

// WithClock makes the fake read time from now (health ping times, last-allocated annotations).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// Batched makes counter and list changes wait for Flush before they reach the GameServer
// (and the watch stream), like the real sidecar's batching; GET endpoints still answer the
// projected value.
func Batched() Option { return func(s *Server) { s.batched = true } }

// Server is the fake gateway.
type Server struct {
	tb      testing.TB
	ln      net.Listener // bound for the fake's whole life, so no other test takes the port
	addr    string
	now     func() time.Time
	batched bool

	mu       sync.Mutex
	srv      *httptest.Server // nil while "down"
	gate     *gateListener    // hands accepted connections to srv
	stop     chan struct{}    // closed when the current server stops: ends its streams
	gs       GameServer       // committed: what GetGameServer and the watch show
	pending  []func(*GameServer)
	rv       int64
	pings    []time.Time
	calls    []Call
	watchers map[*watcher]struct{}
	paused   bool // watch events held back (PauseWatches)
	dirty    bool // a change happened while paused
	reserve  *time.Timer
}

type watcher struct {
	lines chan []byte
	end   chan []byte // a last line to send (an error), or nil: end cleanly
}

// New starts a fake gateway serving gs on 127.0.0.1; it stops when the test ends.
func New(tb testing.TB, gs GameServer, opts ...Option) *Server {
	tb.Helper()
	s := NewLate(tb, gs, opts...)
	s.Start()
	return s
}

// NewLate returns a fake gateway whose address (URL) is fixed but which does not serve until
// Start, as when the SDK sidecar starts after the game server. Meanwhile every connection is
// reset as soon as it is accepted, which clients see as a transport error, as they would see
// "connection refused"; the port stays bound so that no other test can take it.
func NewLate(tb testing.TB, gs GameServer, opts ...Option) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("sdktest: listen: %v", err)
	}
	s := &Server{tb: tb, ln: ln, addr: ln.Addr().String(), now: time.Now, gs: gs.clone(), rv: 1,
		watchers: make(map[*watcher]struct{})}
	for _, o := range opts {
		o(s)
	}
	go s.accept()
	tb.Cleanup(func() {
		s.Stop()
		_ = ln.Close()
	})
	return s
}

// accept hands each connection to the running server, or resets it while the fake is down.
func (s *Server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		gate := s.gate
		s.mu.Unlock()
		if gate == nil || !gate.hand(c) {
			reset(c)
		}
	}
}

// reset closes c with a TCP RST, like a port nobody listens on.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// gateListener is the listener of one run of the server: it gets its connections from
// accept, and closing it (when the server stops) leaves the real listener bound.
type gateListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newGate(addr net.Addr) *gateListener {
	return &gateListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (g *gateListener) hand(c net.Conn) bool {
	select {
	case g.conns <- c:
		return true
	case <-g.done:
		return false
	}
}

func (g *gateListener) Accept() (net.Conn, error) {
	select {
	case c := <-g.conns:
		return c, nil
	case <-g.done:
		return nil, net.ErrClosed
	}
}

func (g *gateListener) Close() error {
	g.once.Do(func() { close(g.done) })
	return nil
}

func (g *gateListener) Addr() net.Addr { return g.addr }

// URL is the gateway's base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return "http://" + s.addr }

// Port is the gateway's port, the value AGONES_SDK_HTTP_PORT would have.
func (s *Server) Port() string {
	_, p, _ := net.SplitHostPort(s.addr)
	return p
}

// Start serves (again) on the fake's address. Starting a started server does nothing.
func (s *Server) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	gate := newGate(s.ln.Addr())
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	_ = srv.Listener.Close()
	srv.Listener = gate
	srv.Start()
	s.srv, s.gate, s.stop = srv, gate, make(chan struct{})
}

// Stop stops serving and ends every watch stream, as when the sidecar exits; new
// connections are reset until Start serves again, with the same GameServer.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, stop := s.srv, s.stop
	s.srv, s.gate, s.stop = nil, nil, nil
	if s.reserve != nil {
		s.reserve.Stop()
	}
	s.mu.Unlock()
	if srv == nil {
		return
	}
	close(stop)
	srv.CloseClientConnections()
	srv.Close()
}

// GameServer returns a copy of the committed GameServer.
func (s *Server) GameServer() GameServer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gs.clone()
}

// Update changes the GameServer as the Agones controller or an allocation would, and pushes a
// watch event. Pending (batched) SDK changes stay pending.
func (s *Server) Update(f func(*GameServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.gs)
	s.changedLocked()
}

// Allocation is what a GameServerAllocation applies to a GameServer: a label and annotation
// patch and list actions (values to add per list).
type Allocation struct {
	Labels      map[string]string
	Annotations map[string]string
	AddValues   map[string][]string
}

// Allocate applies a as a successful GameServerAllocation does (AGONES.md §1.2), in one
// write: labels and annotations merged, agones.dev/last-allocated set, state Allocated, then
// list values added, duplicates ignored and values past capacity silently dropped. It works
// on a Ready or an Allocated server alike (re-allocation) and pushes one watch event.
func (s *Server) Allocate(a Allocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &s.gs
	if g.Labels == nil {
		g.Labels = map[string]string{}
	}
	if g.Annotations == nil {
		g.Annotations = map[string]string{}
	}
	maps.Copy(g.Labels, a.Labels)
	maps.Copy(g.Annotations, a.Annotations)
	g.Annotations["agones.dev/last-allocated"] = s.now().UTC().Format(time.RFC3339Nano)
	g.State = "Allocated"
	for name, values := range a.AddValues {
		l, ok := g.Lists[name]
		if !ok {
			continue
		}
		for _, v := range values {
			if !slices.Contains(l.Values, v) && int64(len(l.Values)) < l.Capacity {
				l.Values = append(l.Values, v)
			}
		}
		g.Lists[name] = l
	}
	s.changedLocked()
}

// Flush writes the pending (batched) counter and list changes to the GameServer and pushes a
// watch event, as the real sidecar does about once a second.
func (s *Server) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return
	}
	for _, op := range s.pending {
		op(&s.gs)
	}
	s.pending = nil
	s.changedLocked()
}

// Pending is the number of batched changes not yet flushed.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Pings returns the times of the health pings received.
func (s *Server) Pings() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pings)
}

// Calls returns every request received, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallCount is the number of requests received for method and path.
func (s *Server) CallCount(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Method == method && c.Path == path {
			n++
		}
	}
	return n
}

// Watchers is the number of open watch streams.
func (s *Server) Watchers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watchers)
}

// EndWatches ends every open watch stream cleanly (EOF), as a sidecar restart does.
func (s *Server) EndWatches() { s.endWatches(nil) }

// FailWatches sends {"error": {"code": code, "message": msg}} on every open watch stream and
// ends it.
func (s *Server) FailWatches(code int, msg string) {
	line, _ := json.Marshal(map[string]any{"error": rpcStatus(code, msg)})
	s.endWatches(append(line, '\n'))
}

func (s *Server) endWatches(last []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watchers {
		select {
		case w.end <- last:
		default:
		}
		delete(s.watchers, w)
	}
}

// PauseWatches holds watch events back, as a lagging sidecar informer does: the GameServer
// (and GetGameServer) changes, the open streams do not hear of it until ResumeWatches.
func (s *Server) PauseWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = true
}

// ResumeWatches sends the current GameServer to every open stream if it changed while paused.
func (s *Server) ResumeWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = false
	if s.dirty {
		s.dirty = false
		s.pushLocked()
	}
}

// changedLocked records a change of the committed GameServer and sends it to every watcher.
func (s *Server) changedLocked() {
	s.rv++
	if s.paused {
		s.dirty = true
		return
	}
	s.pushLocked()
}

func (s *Server) pushLocked() {
	line := s.encodeLocked()
	for w := range s.watchers {
		select {
		case w.lines <- line:
		default: // a watcher that does not read is dropped, as a stalled stream would be
			delete(s.watchers, w)
			select {
			case w.end <- nil:
			default:
			}
		}
	}
}

// ---- the HTTP gateway ----

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Body: string(body), At: s.now()})
	s.mu.Unlock()

	p := r.URL.Path
	type route struct {
		method string
		h      func(http.ResponseWriter, *http.Request, []byte)
	}
	var rt *route
	switch {
	case p == "/ready":
		rt = &route{"POST", s.state("Ready")}
	case p == "/allocate":
		rt = &route{"POST", s.state("Allocated")}
	case p == "/shutdown":
		rt = &route{"POST", s.state("Shutdown")}
	case p == "/reserve":
		rt = &route{"POST", s.reserveCall}
	case p == "/health":
		rt = &route{"POST", s.health}
	case p == "/metadata/label":
		rt = &route{"PUT", s.metadata(true)}
	case p == "/metadata/annotation":
		rt = &route{"PUT", s.metadata(false)}
	case p == "/gameserver":
		rt = &route{"GET", s.getGameServer}
	case p == "/watch/gameserver":
		rt = &route{"GET", s.watch}
	case strings.HasPrefix(p, "/v1beta1/counters/") && len(p) > len("/v1beta1/counters/"):
		if r.Method == "PATCH" {
			rt = &route{"PATCH", s.updateCounter}
		} else {
			rt = &route{"GET", s.getCounter}
		}
	case strings.HasPrefix(p, "/v1beta1/lists/") && len(p) > len("/v1beta1/lists/"):
		switch name := strings.TrimPrefix(p, "/v1beta1/lists/"); {
		case strings.HasSuffix(name, ":addValue"):
			rt = &route{"POST", s.addValue}
		case strings.HasSuffix(name, ":removeValue"):
			rt = &route{"POST", s.removeValue}
		case r.Method == "PATCH":
			rt = &route{"PATCH", s.updateList}
		default:
			rt = &route{"GET", s.getList}
		}
	}
	switch {
	case rt == nil:
		// grpc-gateway's routing errors: 404 NotFound for an unknown path.
		writeStatus(w, http.StatusNotFound, 5, "Not Found")
	case rt.method != r.Method:
		// ... and 501 Unimplemented for a known path with another method.
		writeStatus(w, http.StatusNotImplemented, 12, "Method Not Allowed")
	default:
		rt.h(w, r, body)
	}
}

// state handles /ready, /allocate and /shutdown: the state changes at once. Shutdown,
// Unhealthy and Error are terminal: the call is accepted (the real sidecar queues it) and
// changes nothing.
func (s *Server) state(to string) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, _ *http.Request, body []byte) {
		if _, ok := decodeObject(w, body, true); !ok {
			return
		}
		s.mu.Lock()
		if !terminal(s.gs.State) && s.gs.State != to {
			s.gs.State = to
			s.changedLocked()
		}
		s.mu.Unlock()
		writeJSON(w, struct{}{})
	}
}

func terminal(state string) bool {
	return state == "Shutdown" || state == "Unhealthy" || state == "Error"
}

// reserveCall handles /reserve: Reserved, back to Ready after the given seconds of real time
// (not WithClock's), or until the next state change for 0.
func (s *Server) reserveCall(w http.ResponseWriter, _ *http.Request, body []byte) {
	m, ok := decodeObject(w, body, true)
	if !ok {
		return
	}
	secs, ok := int64Field(w, m, "seconds")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if terminal(s.gs.State) {
		writeJSON(w, struct{}{})
		return
	}
	if s.reserve != nil {
		s.reserve.Stop()
	}
	s.gs.State = "Reserved"
	s.changedLocked()
	if secs > 0 {
		s.reserve = time.AfterFunc(time.Duration(secs)*time.Second, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.gs.State == "Reserved" {
				s.gs.State = "Ready"
				s.changedLocked()
			}
		})
	}
	writeJSON(w, struct{}{})
}

// health handles /health, a client-streaming RPC: every JSON object in the body is one ping,
// and an empty body is rejected with 400.
func (s *Server) health(w http.ResponseWriter, _ *http.Request, body []byte) {
	dec := json.NewDecoder(bytes.NewReader(body))
	n := 0
	for {
		var v map[string]json.RawMessage
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeStatus(w, http.StatusBadRequest, 3, err.Error())
			return
		}
		n++
	}
	if n == 0 {
		writeStatus(w, http.StatusBadRequest, 3, "EOF")
		return
	}
	s.mu.Lock()
	for range n {
		s.pings = append(s.pings, s.now())
	}
	s.mu.Unlock()
	writeJSON(w, struct{}{})
}

var labelName = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)

// metadata handles SetLabel and SetAnnotation: the sidecar prefixes the key with
// agones.dev/sdk- and rejects an invalid key (or label value) with 400.
func (s *Server) metadata(label bool) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, _ *http.Request, body []byte) {
		m, ok := decodeObject(w, body, true)
		if !ok {
			return
		}
		key, ok := stringField(w, m, "key")
		if !ok {
			return
		}
		value, ok := stringField(w, m, "value")
		if !ok {
			return
		}
		name := "sdk-" + key
		if len(name) > 63 || !labelName.MatchString(name) {
			writeStatus(w, http.StatusBadRequest, 3, fmt.Sprintf("invalid key %q", key))
			return
		}
		if label && value != "" && (len(value) > 63 || !labelName.MatchString(value)) {
			writeStatus(w, http.StatusBadRequest, 3, fmt.Sprintf("invalid label value %q", value))
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		target := &s.gs.Annotations
		if label {
			target = &s.gs.Labels
		}
		if *target == nil {
			*target = map[string]string{}
		}
		(*target)["agones.dev/"+name] = value
		s.changedLocked()
		writeJSON(w, struct{}{})
	}
}

func (s *Server) getGameServer(w http.ResponseWriter, _ *http.Request, _ []byte) {
	s.mu.Lock()
	line := s.encodeLocked()
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(line)
}

// watch streams {"result": GameServer} lines: the current one at once, then one per change,
// until the client leaves, the stream is ended, or the server stops.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, _ []byte) {
	wt := &watcher{lines: make(chan []byte, 256), end: make(chan []byte, 1)}
	s.mu.Lock()
	stop := s.stop
	first := s.encodeLocked()
	s.watchers[wt] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, wt)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	send := func(line []byte) bool {
		if _, err := w.Write(resultLine(line)); err != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	if !send(first) {
		return
	}
	for {
		select {
		case line := <-wt.lines:
			if !send(line) {
				return
			}
		case last := <-wt.end:
			// Send what was queued before the end, then the last line.
		drain:
			for {
				select {
				case line := <-wt.lines:
					if !send(line) {
						return
					}
				default:
					break drain
				}
			}
			if last != nil {
				_, _ = w.Write(last)
				if fl != nil {
					fl.Flush()
				}
			}
			return
		case <-stop:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func resultLine(gs []byte) []byte {
	out := make([]byte, 0, len(gs)+12)
	out = append(out, `{"result":`...)
	out = append(out, gs...)
	return append(out, "}\n"...)
}

// ---- counters and lists ----

// projectedLocked is the GameServer with the pending changes applied: what the counter and
// list endpoints answer and check against.
func (s *Server) projectedLocked() GameServer {
	g := s.gs.clone()
	for _, op := range s.pending {
		op(&g)
	}
	return g
}

// applyLocked applies op now, or queues it in batched mode.
func (s *Server) applyLocked(op func(*GameServer)) {
	if s.batched {
		s.pending = append(s.pending, op)
		return
	}
	op(&s.gs)
	s.changedLocked()
}

func (s *Server) getCounter(w http.ResponseWriter, r *http.Request, _ []byte) {
	name := strings.TrimPrefix(r.URL.Path, "/v1beta1/counters/")
	s.mu.Lock()
	c, ok := s.projectedLocked().Counters[name]
	s.mu.Unlock()
	if !ok {
		writeStatus(w, http.StatusInternalServerError, 2, fmt.Sprintf("not found. %s Counter not found", name))
		return
	}
	writeJSON(w, wireCounter{Name: name, Count: c.Count, Capacity: c.Capacity})
}

// updateCounter handles PATCH /v1beta1/counters/{name} with capacity, count and/or countDiff
// (only that spelling: count_diff is ignored, as by the real gateway).
func (s *Server) updateCounter(w http.ResponseWriter, r *http.Request, body []byte) {
	name := strings.TrimPrefix(r.URL.Path, "/v1beta1/counters/")
	m, ok := decodeObject(w, body, false)
	if !ok {
		return
	}
	var capacity, count *int64
	for _, f := range []struct {
		key string
		dst **int64
	}{{"capacity", &capacity}, {"count", &count}} {
		if raw, ok := m[f.key]; ok && string(raw) != "null" {
			v, ok := int64Field(w, m, f.key)
			if !ok {
				return
			}
			*f.dst = &v
		}
	}
	diff, ok := int64Field(w, m, "countDiff")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.projectedLocked().Counters[name]
	if !ok {
		writeStatus(w, http.StatusInternalServerError, 2, fmt.Sprintf("not found. %s Counter not found", name))
		return
	}
	if capacity != nil {
		if *capacity < 0 {
			writeStatus(w, http.StatusInternalServerError, 2,
				fmt.Sprintf("out of range. Capacity must be greater than or equal to 0. Found Capacity: %d", *capacity))
			return
		}
		c.Capacity = *capacity
	}
	if count != nil {
		c.Count = *count
	}
	c.Count += diff
	if c.Count < 0 || c.Count > c.Capacity {
		writeStatus(w, http.StatusInternalServerError, 2,
			fmt.Sprintf("out of range. Count must be within range [0,Capacity]. Found Count: %d, Capacity: %d", c.Count, c.Capacity))
		return
	}
	s.applyLocked(func(g *GameServer) {
		cur, ok := g.Counters[name]
		if !ok {
			return
		}
		if capacity != nil {
			cur.Capacity = *capacity
		}
		if count != nil {
			cur.Count = *count
		}
		cur.Count = min(max(cur.Count+diff, 0), cur.Capacity)
		g.Counters[name] = cur
	})
	writeJSON(w, wireCounter{Name: name, Count: c.Count, Capacity: c.Capacity})
}

func (s *Server) getList(w http.ResponseWriter, r *http.Request, _ []byte) {
	name := strings.TrimPrefix(r.URL.Path, "/v1beta1/lists/")
	s.mu.Lock()
	l, ok := s.projectedLocked().Lists[name]
	s.mu.Unlock()
	if !ok {
		writeStatus(w, http.StatusInternalServerError, 2, fmt.Sprintf("not found. %s List not found", name))
		return
	}
	writeJSON(w, wireList{Name: name, Capacity: l.Capacity, Values: nonNil(l.Values)})
}

// addValue handles POST /v1beta1/lists/{name}:addValue. Like the SDK server it checks, in
// order: the list exists (not found), it has room (out of range), the value is new (already
// exists). A full list answers "out of range" even for a value it already holds.
func (s *Server) addValue(w http.ResponseWriter, r *http.Request, body []byte) {
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1beta1/lists/"), ":addValue")
	value, ok := valueBody(w, body)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.projectedLocked().Lists[name]
	switch {
	case !ok:
		writeStatus(w, http.StatusInternalServerError, 2, fmt.Sprintf("not found. %s List not found", name))
		return
	case int64(len(l.Values)) >= l.Capacity:
		writeStatus(w, http.StatusInternalServerError, 2,
			fmt.Sprintf("out of range. No available capacity. Current Capacity: %d, List Size: %d", l.Capacity, len(l.Values)))
		return
	case slices.Contains(l.Values, value):
		writeStatus(w, http.StatusInternalServerError, 2, fmt.Sprintf("already exists. Value: %s already in List: %s", value, name))
		return
	}
	s.applyLocked(func(g *GameServer) {
		cur, ok := g.Lists[name]
		if ok && int64(len(cur.Values)) < cur.Capacity && !slices.Contains(cur.Values, value) {
			cur.Values = append(cur.Values, value)
			g.Lists[name] = cur
		}
	})
	writeJSON(w, wireList{Name: name, Capacity: l.Capacity, Values: append(nonNil(l.Values), value)})
}

// removeValue handles POST /v1beta1/lists/{name}:removeValue.
func (s *Server) removeValue(w http.ResponseWriter, r *http.Request, body []byte) {
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1beta1/lists/"), ":removeValue")
	value, ok := valueBody(w, body)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.projectedLocked().Lists[name]
	switch {
	case !ok:
		writeStatus(w, http.StatusInternalServerError, 2, fmt.Sprintf("not found. %s List not found", name))
		return
	case !slices.Contains(l.Values, value):
		writeStatus(w, http.StatusInternalServerError, 2, fmt.Sprintf("not found. Value: %s not found in List: %s", value, name))
		return
	}
	s.applyLocked(func(g *GameServer) {
		if cur, ok := g.Lists[name]; ok {
			cur.Values = slices.DeleteFunc(cur.Values, func(v string) bool { return v == value })
			g.Lists[name] = cur
		}
	})
	writeJSON(w, wireList{Name: name, Capacity: l.Capacity,
		Values: nonNil(slices.DeleteFunc(slices.Clone(l.Values), func(v string) bool { return v == value }))})
}

// updateList handles PATCH /v1beta1/lists/{name}: capacity (0 to 1000) and/or values (which
// replace the whole list), by the body's keys or ?update_mask=. Like the real sidecar it
// answers an empty List.
func (s *Server) updateList(w http.ResponseWriter, r *http.Request, body []byte) {
	name := strings.TrimPrefix(r.URL.Path, "/v1beta1/lists/")
	m, ok := decodeObject(w, body, false)
	if !ok {
		return
	}
	mask := map[string]bool{}
	if um := r.URL.Query().Get("update_mask"); um != "" {
		for _, f := range strings.Split(um, ",") {
			mask[strings.TrimSpace(f)] = true
		}
	} else {
		for k := range m {
			mask[k] = true
		}
	}
	for k := range mask {
		if k != "capacity" && k != "values" {
			writeStatus(w, http.StatusBadRequest, 3, fmt.Sprintf("invalid argument. Field Mask Path(s): [%s] are invalid for List", k))
			return
		}
	}
	var capacity int64
	if mask["capacity"] {
		if capacity, ok = int64Field(w, m, "capacity"); !ok {
			return
		}
		if capacity < 0 || capacity > 1000 {
			writeStatus(w, http.StatusInternalServerError, 2,
				fmt.Sprintf("out of range. Capacity must be within range [0,1000]. Found Capacity: %d", capacity))
			return
		}
	}
	var values []string
	if raw, ok := m["values"]; ok && mask["values"] && string(raw) != "null" {
		if err := json.Unmarshal(raw, &values); err != nil {
			writeStatus(w, http.StatusBadRequest, 3, err.Error())
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.projectedLocked().Lists[name]; !ok {
		writeStatus(w, http.StatusInternalServerError, 2, fmt.Sprintf("not found. %s List not found", name))
		return
	}
	s.applyLocked(func(g *GameServer) {
		cur, ok := g.Lists[name]
		if !ok {
			return
		}
		if mask["capacity"] {
			cur.Capacity = capacity
		}
		if mask["values"] {
			cur.Values = slices.Compact(slices.Clone(values))
		}
		if int64(len(cur.Values)) > cur.Capacity {
			cur.Values = cur.Values[:cur.Capacity]
		}
		g.Lists[name] = cur
	})
	writeJSON(w, wireList{Values: []string{}})
}

// ---- protobuf-JSON on the wire ----

// The wire types spell the gateway's output: proto field names, int64 as strings, every
// field present.
type wireGameServer struct {
	ObjectMeta wireMeta   `json:"object_meta"`
	Spec       wireSpec   `json:"spec"`
	Status     wireStatus `json:"status"`
}

type wireMeta struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace"`
	UID               string            `json:"uid"`
	ResourceVersion   string            `json:"resource_version"`
	Generation        int64             `json:"generation,string"`
	CreationTimestamp int64             `json:"creation_timestamp,string"`
	DeletionTimestamp int64             `json:"deletion_timestamp,string"`
	Annotations       map[string]string `json:"annotations"`
	Labels            map[string]string `json:"labels"`
}

type wireSpec struct {
	Health struct {
		Disabled            bool  `json:"disabled"`
		PeriodSeconds       int32 `json:"period_seconds"`
		FailureThreshold    int32 `json:"failure_threshold"`
		InitialDelaySeconds int32 `json:"initial_delay_seconds"`
	} `json:"health"`
}

type wireStatus struct {
	State     string                 `json:"state"`
	Address   string                 `json:"address"`
	Addresses []wireAddress          `json:"addresses"`
	Ports     []wirePort             `json:"ports"`
	Players   *struct{}              `json:"players"` // Alpha PlayerTracking: off, so null
	Counters  map[string]wireCounter `json:"counters"`
	Lists     map[string]wireList    `json:"lists"`
}

type wireAddress struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

type wirePort struct {
	Name string `json:"name"`
	Port int32  `json:"port"`
}

// wireCounter is both a status counter ({count, capacity}) and a beta Counter (with name).
type wireCounter struct {
	Name     string `json:"name,omitempty"`
	Count    int64  `json:"count,string"`
	Capacity int64  `json:"capacity,string"`
}

// wireList is both a status list ({capacity, values}) and a beta List (with name).
type wireList struct {
	Name     string   `json:"name,omitempty"`
	Capacity int64    `json:"capacity,string"`
	Values   []string `json:"values"`
}

func (s *Server) encodeLocked() []byte {
	g := s.gs
	var out wireGameServer
	out.ObjectMeta = wireMeta{
		Name: g.Name, Namespace: g.Namespace, UID: g.UID, ResourceVersion: strconv.FormatInt(s.rv, 10),
		Generation: g.Generation, CreationTimestamp: g.CreationTimestamp, DeletionTimestamp: g.DeletionTimestamp,
		Annotations: nonNilMap(g.Annotations), Labels: nonNilMap(g.Labels),
	}
	out.Spec.Health.Disabled = g.Health.Disabled
	out.Spec.Health.PeriodSeconds = g.Health.PeriodSeconds
	out.Spec.Health.FailureThreshold = g.Health.FailureThreshold
	out.Spec.Health.InitialDelaySeconds = g.Health.InitialDelaySeconds
	out.Status = wireStatus{
		State: g.State, Address: g.Address, Addresses: []wireAddress{}, Ports: []wirePort{},
		Counters: map[string]wireCounter{}, Lists: map[string]wireList{},
	}
	for _, a := range g.Addresses {
		out.Status.Addresses = append(out.Status.Addresses, wireAddress(a))
	}
	for _, p := range g.Ports {
		out.Status.Ports = append(out.Status.Ports, wirePort(p))
	}
	for k, c := range g.Counters {
		out.Status.Counters[k] = wireCounter{Count: c.Count, Capacity: c.Capacity}
	}
	for k, l := range g.Lists {
		out.Status.Lists[k] = wireList{Capacity: l.Capacity, Values: nonNil(l.Values)}
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic(err) // plain structs, maps and slices: cannot fail
	}
	return b
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return slices.Clone(v)
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func rpcStatus(code int, msg string) map[string]any {
	return map[string]any{"code": code, "message": msg, "details": []any{}}
}

func writeStatus(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(rpcStatus(code, msg))
}

// writeJSON answers 200 with v. The body is indented, as protojson's randomized whitespace
// may be, so clients must parse rather than compare text.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, 13, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// decodeObject reads a protobuf-JSON request message: a JSON object whose unknown keys are
// ignored. An empty body is the empty message when allowEmpty (grpc-gateway treats EOF so).
func decodeObject(w http.ResponseWriter, body []byte, allowEmpty bool) (map[string]json.RawMessage, bool) {
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return map[string]json.RawMessage{}, true
		}
		writeStatus(w, http.StatusBadRequest, 3, "EOF")
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		msg := "body is not a JSON object"
		if err != nil {
			msg = err.Error()
		}
		writeStatus(w, http.StatusBadRequest, 3, msg)
		return nil, false
	}
	return m, true
}

// int64Field reads an int64 given as a number or a string ("30"); absent or null is 0.
func int64Field(w http.ResponseWriter, m map[string]json.RawMessage, key string) (int64, bool) {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		return 0, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, 3, fmt.Sprintf("bad value for int64 field %s: %s", key, raw))
		return 0, false
	}
	return v, true
}

// stringField reads a string field; absent or null is "".
func stringField(w http.ResponseWriter, m map[string]json.RawMessage, key string) (string, bool) {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		return "", true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		writeStatus(w, http.StatusBadRequest, 3, fmt.Sprintf("bad value for string field %s: %s", key, raw))
		return "", false
	}
	return s, true
}

func valueBody(w http.ResponseWriter, body []byte) (string, bool) {
	m, ok := decodeObject(w, body, false)
	if !ok {
		return "", false
	}
	return stringField(w, m, "value")
}
