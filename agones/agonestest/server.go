// Package agonestest is a small, honest stand-in for the parts of a Kubernetes API server
// running Agones that Usher talks to, for tests where no cluster runs:
//
//   - the GameServerAllocation endpoint (POST /apis/allocation.agones.dev/v1/namespaces/
//     {ns}/gameserverallocations), behaving as the Agones reference describes: selectors
//     (matchLabels, matchExpressions, gameServerState, counter and list filters) tried in
//     order, Packed or Distributed ordering with priorities, the label and annotation
//     patch, agones.dev/last-allocated, counter and list actions with silent clamping and
//     dropping past capacity, 201 for Allocated, UnAllocated and Contention, 422 with a
//     metav1.Status for invalid allocations, 500 in plain text for a missing Content-Type
//     or an undecodable body; requests are served the way Agones' allocator serves them,
//     in batches against a cache a chosen GameServer leaves until its update is seen
//     (allocator.go says what is modelled and where it comes from);
//   - GameServer list, watch and get (GET /apis/agones.dev/v1/[namespaces/{ns}/]gameservers),
//     with resource versions, label selectors and watch timeouts, serving objects the way
//     the API server does (CRD-defaulted immutableReplicas, null for unset status fields),
//     so client-go informers run against it unchanged;
//   - CRD schema validation (CRDs), to check objects against the real Agones CRDs.
//
// Tests add, change and delete GameServers with Go calls (Add, Update, Delete), which
// reach watchers as events, and can make the next allocations answer Contention or fail.
package agonestest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	kjson "sigs.k8s.io/json"

	"github.com/usher-gg/usher/agones"
)

// Server is a fake API server with Agones. Create it with NewServer; it is closed when the
// test ends.
type Server struct {
	tb  testing.TB
	srv *httptest.Server

	mu          sync.Mutex
	now         func() time.Time
	rv          int64 // last resource version handed out, like etcd's revision
	uid         int64
	gameServers map[string]*agones.GameServer // by namespace/name
	events      []event
	changed     chan struct{} // closed and replaced at every change
	closed      chan struct{}
	contention  int       // the next n valid allocations answer Contention
	stale       int       // the next n valid allocations ignore counter and list filters
	failures    []failure // the next allocations fail like this
	requests    []agones.GameServerAllocation

	// The allocator (allocator.go): its cache of Ready and Allocated GameServers, the
	// pending requests, and its batch window.
	cache     map[string]*agones.GameServer // by namespace/name
	pending   chan *allocRequest
	batchWait time.Duration
	batches   int
	held      chan struct{} // Hold: closed by Release
}

type event struct {
	rv       int64
	typ      watch.EventType
	obj, old *agones.GameServer // old: the object before a MODIFIED
}

type failure struct {
	code   int
	body   string
	reject bool // a 422 metav1.Status with body as its message
}

// NewServer starts a fake API server on a loopback port. It is closed by tb.Cleanup.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{
		tb:          tb,
		now:         time.Now,
		gameServers: map[string]*agones.GameServer{},
		changed:     make(chan struct{}),
		closed:      make(chan struct{}),
		cache:       map[string]*agones.GameServer{},
		pending:     make(chan *allocRequest, maxBatchQueue),
		batchWait:   DefaultBatchWait,
	}
	go s.allocator()
	mux := http.NewServeMux()
	mux.HandleFunc("/apis/allocation.agones.dev/v1/namespaces/{ns}/gameserverallocations", s.allocate)
	mux.HandleFunc("GET /apis/agones.dev/v1/namespaces/{ns}/gameservers", s.listOrWatch)
	mux.HandleFunc("GET /apis/agones.dev/v1/gameservers", s.listOrWatch)
	mux.HandleFunc("GET /apis/agones.dev/v1/namespaces/{ns}/gameservers/{name}", s.get)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource", nil)
	})
	s.srv = httptest.NewServer(mux)
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server, ending open watches first.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closed:
		s.mu.Unlock()
		return
	default:
		close(s.closed)
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// RESTConfig returns a client-go config for the server.
func (s *Server) RESTConfig() *rest.Config { return &rest.Config{Host: s.srv.URL} }

// Client returns an agones.Client for the server.
func (s *Server) Client() *agones.Client {
	c, err := agones.NewClientForURL(s.srv.URL)
	if err != nil {
		s.tb.Fatal(err)
	}
	return c
}

// SetNow replaces the clock used for creation timestamps and agones.dev/last-allocated.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Contend makes the next n valid allocation requests answer 201 with state Contention,
// as Agones does when the chosen GameServer was taken at the same moment.
func (s *Server) Contend(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.contention = n
}

// FailNext makes the next allocation request fail with code and a plain-text body, as
// Agones does for errors inside the allocator (500).
func (s *Server) FailNext(code int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{code: code, body: body})
}

// RejectNext makes the next allocation request fail with 422 and a metav1.Status
// (reason Invalid) carrying message, as Agones answers an invalid allocation.
func (s *Server) RejectNext(message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{code: http.StatusUnprocessableEntity, body: message, reject: true})
}

// StaleCache makes the next n valid allocations pick their GameServer as if the
// allocator's cache lagged behind the counters and lists (AGONES.md: the cache is
// eventually consistent) and the write did not conflict: counter and list filters pass,
// then the actions run on the current object, so values past capacity are dropped
// silently, as Agones does.
func (s *Server) StaleCache(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stale = n
}

// Requests returns the allocation requests received so far, as decoded, valid or not.
func (s *Server) Requests() []agones.GameServerAllocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]agones.GameServerAllocation, len(s.requests))
	for i := range s.requests {
		s.requests[i].DeepCopyInto(&out[i])
	}
	return out
}

// ResourceVersion is the latest resource version.
func (s *Server) ResourceVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strconv.FormatInt(s.rv, 10)
}

// ---- GameServers, driven by the test ----

// Add creates a GameServer, as a Fleet's controller would: it gets a uid, a resource
// version, a creation timestamp (unless set) and the agones.dev/controller finalizer, and
// its status counters and lists are copied from spec when status has none. Watchers see
// ADDED. It returns the stored object.
func (s *Server) Add(gs *agones.GameServer) *agones.GameServer {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	gs = gs.DeepCopy()
	key := gs.Namespace + "/" + gs.Name
	if gs.Namespace == "" || gs.Name == "" {
		s.tb.Fatalf("agonestest: GameServer needs a namespace and a name, got %q", key)
	}
	if _, ok := s.gameServers[key]; ok {
		s.tb.Fatalf("agonestest: GameServer %s already exists", key)
	}
	s.uid++
	gs.UID = types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", s.uid))
	if gs.CreationTimestamp.IsZero() {
		gs.CreationTimestamp = metav1.NewTime(s.now().Truncate(time.Second))
	}
	if !slices.Contains(gs.Finalizers, agones.FinalizerController) {
		gs.Finalizers = append(gs.Finalizers, agones.FinalizerController)
	}
	if gs.Status.Counters == nil && gs.Spec.Counters != nil {
		gs.Status.Counters = maps.Clone(gs.Spec.Counters)
	}
	if gs.Status.Lists == nil && gs.Spec.Lists != nil {
		gs.Status.Lists = map[string]agones.ListStatus{}
		for k, l := range gs.Spec.Lists {
			l.Values = slices.Clone(l.Values)
			gs.Status.Lists[k] = l
		}
	}
	s.storeLocked(gs, nil, watch.Added)
	return gs.DeepCopy()
}

// Update changes a GameServer with fn (which gets a copy), as the Agones controller or
// the SDK sidecar would. Watchers see MODIFIED. It returns the stored object.
func (s *Server) Update(namespace, name string, fn func(gs *agones.GameServer)) *agones.GameServer {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.gameServers[namespace+"/"+name]
	if !ok {
		s.tb.Fatalf("agonestest: no GameServer %s/%s", namespace, name)
	}
	gs := old.DeepCopy()
	fn(gs)
	gs.Namespace, gs.Name, gs.UID = old.Namespace, old.Name, old.UID
	s.storeLocked(gs, old, watch.Modified)
	return gs.DeepCopy()
}

// Delete removes a GameServer at once (as after its finalizer is removed). Watchers see
// DELETED.
func (s *Server) Delete(namespace, name string) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.gameServers[namespace+"/"+name]
	if !ok {
		s.tb.Fatalf("agonestest: no GameServer %s/%s", namespace, name)
	}
	s.storeLocked(old.DeepCopy(), old, watch.Deleted)
}

// Get returns a copy of a GameServer.
func (s *Server) Get(namespace, name string) (*agones.GameServer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gs, ok := s.gameServers[namespace+"/"+name]
	return gs.DeepCopy(), ok
}

// GameServers returns copies of every GameServer, by namespace and name.
func (s *Server) GameServers() []*agones.GameServer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*agones.GameServer, 0, len(s.gameServers))
	for _, gs := range s.gameServers {
		out = append(out, gs.DeepCopy())
	}
	slices.SortFunc(out, func(a, b *agones.GameServer) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return out
}

// storeLocked records a change: a new resource version, the stored object and an event.
func (s *Server) storeLocked(gs, old *agones.GameServer, typ watch.EventType) {
	s.rv++
	gs.ResourceVersion = strconv.FormatInt(s.rv, 10)
	key := gs.Namespace + "/" + gs.Name
	if typ == watch.Deleted {
		delete(s.gameServers, key)
	} else {
		s.gameServers[key] = gs
	}
	s.cacheLocked(gs, typ)
	s.events = append(s.events, event{rv: s.rv, typ: typ, obj: gs.DeepCopy(), old: old.DeepCopy()})
	close(s.changed)
	s.changed = make(chan struct{})
}

// ---- list, watch, get ----

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	gs, ok := s.gameServers[r.PathValue("ns")+"/"+r.PathValue("name")]
	gs = gs.DeepCopy()
	s.mu.Unlock()
	if !ok {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound,
			fmt.Sprintf("gameservers.agones.dev %q not found", r.PathValue("name")), nil)
		return
	}
	writeJSON(w, http.StatusOK, wire(gs))
}

func (s *Server) listOrWatch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sel, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error(), nil)
		return
	}
	ns := r.PathValue("ns")
	if q.Get("watch") == "true" || q.Get("watch") == "1" {
		s.watch(w, r, ns, sel)
		return
	}
	s.mu.Lock()
	items := []any{}
	var list []*agones.GameServer
	for _, gs := range s.gameServers {
		if (ns == "" || gs.Namespace == ns) && sel.Matches(labels.Set(gs.Labels)) {
			list = append(list, gs)
		}
	}
	slices.SortFunc(list, func(a, b *agones.GameServer) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	for _, gs := range list {
		items = append(items, wire(gs))
	}
	rv := strconv.FormatInt(s.rv, 10)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"apiVersion": agones.GroupVersion.String(),
		"kind":       "GameServerList",
		"metadata":   map[string]any{"resourceVersion": rv},
		"items":      items,
	})
}

// watch streams events after the resourceVersion parameter (all current objects as ADDED
// when it is "" or "0"), newline-delimited JSON, until timeoutSeconds, the client goes or
// the server closes.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, ns string, sel labels.Selector) {
	q := r.URL.Query()
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	var timeout <-chan time.Time
	if secs, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && secs > 0 {
		t := time.NewTimer(time.Duration(secs) * time.Second)
		defer t.Stop()
		timeout = t.C
	}
	var from int64
	var initial []*agones.GameServer
	s.mu.Lock()
	switch rv := q.Get("resourceVersion"); rv {
	case "", "0":
		from = s.rv
		for _, gs := range s.gameServers {
			initial = append(initial, gs.DeepCopy())
		}
	default:
		n, err := strconv.ParseInt(rv, 10, 64)
		if err != nil || n > s.rv {
			s.mu.Unlock()
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "invalid resourceVersion "+rv, nil)
			return
		}
		from = n
	}
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	send := func(typ watch.EventType, gs *agones.GameServer) bool {
		if err := enc.Encode(map[string]any{"type": string(typ), "object": wire(gs)}); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	inScope := func(gs *agones.GameServer) bool {
		return gs != nil && (ns == "" || gs.Namespace == ns) && sel.Matches(labels.Set(gs.Labels))
	}
	for _, gs := range initial {
		if inScope(gs) && !send(watch.Added, gs) {
			return
		}
	}
	flusher.Flush()
	for {
		s.mu.Lock()
		var pending []event
		for _, e := range s.events {
			if e.rv > from {
				pending = append(pending, e)
			}
		}
		changed := s.changed
		s.mu.Unlock()
		for _, e := range pending {
			from = e.rv
			now, before := inScope(e.obj), inScope(e.old)
			var ok bool
			switch {
			case e.typ == watch.Deleted && before:
				ok = send(watch.Deleted, e.obj)
			case e.typ == watch.Deleted:
				continue
			case now && before:
				ok = send(watch.Modified, e.obj)
			case now:
				ok = send(watch.Added, e.obj)
			case before: // it left the selector: to this watcher it is gone
				ok = send(watch.Deleted, e.obj)
			default:
				continue
			}
			if !ok {
				return
			}
		}
		select {
		case <-changed:
		case <-timeout:
			return
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		}
	}
}

// wire renders gs as the API server serves it: with apiVersion and kind, the CRD-defaulted
// spec.immutableReplicas and status.immutableReplicas, nulls for unset nullable status
// fields, and "values": [] on empty lists.
func wire(gs *agones.GameServer) map[string]any {
	gs = gs.DeepCopy()
	agones.SetGroupVersionKind(gs)
	data, err := json.Marshal(gs)
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		panic(err)
	}
	spec, _ := m["spec"].(map[string]any)
	spec["immutableReplicas"] = 1
	spec["eviction"] = map[string]any{"safe": "Never"}
	status, _ := m["status"].(map[string]any)
	if status == nil {
		status = map[string]any{}
		m["status"] = status
	}
	status["immutableReplicas"] = 1
	status["eviction"] = map[string]any{"safe": "Never"}
	for _, k := range []string{"ports", "addresses", "reservedUntil", "players", "counters", "lists"} {
		if _, ok := status[k]; !ok {
			status[k] = nil
		}
	}
	if lists, ok := status["lists"].(map[string]any); ok {
		for _, l := range lists {
			if l, ok := l.(map[string]any); ok && l["values"] == nil {
				l["values"] = []any{}
			}
		}
	}
	return m
}

// ---- allocation ----

func (s *Server) allocate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost { // the handler is create-only
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	// Agones' handler needs the Content-Type to pick a decoder; without it, a plain 500.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		http.Error(w, fmt.Sprintf("Could not find deserializer for media type: %q", r.Header.Get("Content-Type")), http.StatusInternalServerError)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// Lenient, case-sensitive decoding, as Kubernetes decoders do: unknown or misspelt
	// fields (gameserverState) are dropped silently.
	var gsa agones.GameServerAllocation
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &gsa); err != nil {
		http.Error(w, "error decoding GameServerAllocation: "+err.Error(), http.StatusInternalServerError)
		return
	}
	ns := r.PathValue("ns")

	s.mu.Lock()
	s.requests = append(s.requests, *gsa.DeepCopy())
	if len(s.failures) > 0 {
		f := s.failures[0]
		s.failures = s.failures[1:]
		s.mu.Unlock()
		if f.reject {
			writeStatus(w, f.code, metav1.StatusReasonInvalid, f.body, nil)
			return
		}
		http.Error(w, f.body, f.code)
		return
	}
	applyDefaults(&gsa)
	if errs := validate(&gsa); len(errs) > 0 {
		s.mu.Unlock()
		causes := make([]metav1.StatusCause, 0, len(errs))
		for _, e := range errs {
			causes = append(causes, metav1.StatusCause{Type: metav1.CauseType(e.Type), Message: e.ErrorBody(), Field: e.Field})
		}
		writeStatus(w, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			fmt.Sprintf("GameServerAllocation.allocation.agones.dev %q is invalid: %v", gsa.Name, errs.ToAggregate()),
			&metav1.StatusDetails{Group: agones.AllocationGroupVersion.Group, Kind: "GameServerAllocation", Causes: causes})
		return
	}
	gsa.Namespace = ns
	gsa.CreationTimestamp = metav1.NewTime(s.now().Truncate(time.Second))
	agones.SetGroupVersionKind(&gsa)
	gsa.Status = agones.GameServerAllocationStatus{}
	if s.contention > 0 {
		s.contention--
		s.mu.Unlock()
		gsa.Status.State = agones.GameServerAllocationContention
		writeJSON(w, http.StatusCreated, &gsa)
		return
	}
	req := &allocRequest{gsa: gsa.DeepCopy(), stale: s.stale > 0, resp: make(chan allocResult, 1)}
	if s.stale > 0 {
		s.stale--
	}
	s.mu.Unlock()

	// Into the batch loop, and wait for its answer.
	select {
	case s.pending <- req:
	case <-r.Context().Done():
		return
	case <-s.closed:
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	var res allocResult
	select {
	case res = <-req.resp:
	case <-r.Context().Done():
		return
	case <-s.closed:
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	switch {
	case res.err != nil:
		http.Error(w, res.err.Error(), http.StatusInternalServerError)
		return
	case res.contention:
		gsa.Status.State = agones.GameServerAllocationContention
	case res.gs == nil:
		gsa.Status.State = agones.GameServerAllocationUnAllocated
	default:
		gsa.Name = res.gs.Name
		gsa.Status = allocationStatus(res.gs)
	}
	writeJSON(w, http.StatusCreated, &gsa)
}

// applyDefaults fills in what Agones defaults: Packed scheduling, the Ready state.
func applyDefaults(gsa *agones.GameServerAllocation) {
	if gsa.Spec.Scheduling == "" {
		gsa.Spec.Scheduling = agones.Packed
	}
	for i := range gsa.Spec.Selectors {
		if gsa.Spec.Selectors[i].GameServerState == nil {
			ready := agones.GameServerStateReady
			gsa.Spec.Selectors[i].GameServerState = &ready
		}
	}
}

// validate reports what Agones rejects with 422.
func validate(gsa *agones.GameServerAllocation) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if s := gsa.Spec.Scheduling; s != agones.Packed && s != agones.Distributed {
		errs = append(errs, field.NotSupported(spec.Child("scheduling"), s, []string{string(agones.Packed), string(agones.Distributed)}))
	}
	for i, sel := range gsa.Spec.Selectors {
		p := spec.Child("selectors").Index(i)
		if _, err := metav1.LabelSelectorAsSelector(&sel.LabelSelector); err != nil {
			errs = append(errs, field.Invalid(p, sel.LabelSelector, "Error converting label selector: "+err.Error()))
		}
		if st := *sel.GameServerState; st != agones.GameServerStateReady && st != agones.GameServerStateAllocated {
			errs = append(errs, field.Invalid(p.Child("gameServerState"), st, "GameServerState value can only be Allocated or Ready"))
		}
		for k, c := range sel.Counters {
			if c.MinCount < 0 || c.MaxCount < 0 || c.MinAvailable < 0 || c.MaxAvailable < 0 {
				errs = append(errs, field.Invalid(p.Child("counters").Key(k), c, "values must be non-negative"))
			}
		}
		for k, l := range sel.Lists {
			if l.MinAvailable < 0 || l.MaxAvailable < 0 {
				errs = append(errs, field.Invalid(p.Child("lists").Key(k), l, "values must be non-negative"))
			}
		}
	}
	for i, pr := range gsa.Spec.Priorities {
		p := spec.Child("priorities").Index(i)
		if pr.Type != agones.PriorityCounter && pr.Type != agones.PriorityList {
			errs = append(errs, field.NotSupported(p.Child("type"), pr.Type, []string{agones.PriorityCounter, agones.PriorityList}))
		}
		if pr.Order != "" && pr.Order != agones.Ascending && pr.Order != agones.Descending {
			errs = append(errs, field.NotSupported(p.Child("order"), pr.Order, []string{agones.Ascending, agones.Descending}))
		}
	}
	errs = append(errs, metav1validation.ValidateLabels(gsa.Spec.MetaPatch.Labels, spec.Child("metadata", "labels"))...)
	errs = append(errs, apivalidation.ValidateAnnotations(gsa.Spec.MetaPatch.Annotations, spec.Child("metadata", "annotations"))...)
	for k, a := range gsa.Spec.Counters {
		p := spec.Child("counters").Key(k)
		if (a.Action == "") != (a.Amount == nil) {
			errs = append(errs, field.Invalid(p, a, "action and amount must be given together"))
		}
		if a.Action != "" && a.Action != agones.CounterIncrement && a.Action != agones.CounterDecrement {
			errs = append(errs, field.NotSupported(p.Child("action"), a.Action, []string{agones.CounterIncrement, agones.CounterDecrement}))
		}
		if (a.Amount != nil && *a.Amount < 0) || (a.Capacity != nil && *a.Capacity < 0) {
			errs = append(errs, field.Invalid(p, a, "amount and capacity must be non-negative"))
		}
	}
	for k, a := range gsa.Spec.Lists {
		if a.Capacity != nil && (*a.Capacity < 0 || *a.Capacity > 1000) {
			errs = append(errs, field.Invalid(spec.Child("lists").Key(k).Child("capacity"), *a.Capacity, "must be between 0 and 1000"))
		}
	}
	return errs
}

// comparePriorities orders by available capacity (capacity - count, capacity -
// len(values)): Ascending puts the least available first, Descending the most. A server
// that has the key comes before one that does not.
func comparePriorities(priorities []agones.Priority, a, b *agones.GameServer) int {
	for _, p := range priorities {
		avA, okA := available(p, a)
		avB, okB := available(p, b)
		var c int
		switch {
		case okA && okB:
			c = int(avA - avB)
			if c != 0 && p.Order == agones.Descending {
				c = -c
			}
		case okA:
			c = -1
		case okB:
			c = 1
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

func available(p agones.Priority, gs *agones.GameServer) (int64, bool) {
	switch p.Type {
	case agones.PriorityCounter:
		c, ok := gs.Status.Counters[p.Key]
		return c.Capacity - c.Count, ok
	case agones.PriorityList:
		l, ok := gs.Status.Lists[p.Key]
		return l.Capacity - int64(len(l.Values)), ok
	}
	return 0, false
}

// matches reports whether gs matches one selector (already validated and defaulted);
// labelsAndStateOnly skips the counter and list filters.
func matches(sel *agones.GameServerSelector, gs *agones.GameServer, labelsAndStateOnly bool) bool {
	ls, err := metav1.LabelSelectorAsSelector(&sel.LabelSelector)
	if err != nil || !ls.Matches(labels.Set(gs.Labels)) {
		return false
	}
	if gs.Status.State != *sel.GameServerState {
		return false
	}
	if labelsAndStateOnly {
		return true
	}
	for k, f := range sel.Counters {
		c, ok := gs.Status.Counters[k]
		if !ok {
			return false
		}
		avail := c.Capacity - c.Count
		if avail < f.MinAvailable || (f.MaxAvailable != 0 && avail > f.MaxAvailable) ||
			c.Count < f.MinCount || (f.MaxCount != 0 && c.Count > f.MaxCount) {
			return false
		}
	}
	for k, f := range sel.Lists {
		l, ok := gs.Status.Lists[k]
		if !ok {
			return false
		}
		avail := l.Capacity - int64(len(l.Values))
		if avail < f.MinAvailable || (f.MaxAvailable != 0 && avail > f.MaxAvailable) {
			return false
		}
		if f.ContainsValue != "" && !slices.Contains(l.Values, f.ContainsValue) {
			return false
		}
	}
	return true
}

// ---- responses ----

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string, details *metav1.StatusDetails) {
	writeJSON(w, code, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reason,
		Details:  details,
		Code:     int32(code),
	})
}
