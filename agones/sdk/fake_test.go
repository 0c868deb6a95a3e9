package sdk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-gg/usher/agones/sdk"
	"github.com/usher-gg/usher/agones/sdk/sdktest"
)

// These tests run the client against the sdktest fake gateway, end to end over HTTP.

func ctxT(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func TestClientAgainstFake(t *testing.T) {
	fake := sdktest.New(t, sdktest.DefaultGameServer())
	c := sdk.New(fake.URL(), nil)
	ctx := ctxT(t)

	if err := c.Health(ctx); err != nil {
		t.Fatalf("Health: %v", err)
	}
	if got := len(fake.Pings()); got != 1 {
		t.Errorf("pings = %d, want 1", got)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if err := c.SetLabel(ctx, "room", "K7QX"); err != nil {
		t.Fatalf("SetLabel: %v", err)
	}
	if err := c.SetAnnotation(ctx, "note", "hello"); err != nil {
		t.Fatalf("SetAnnotation: %v", err)
	}
	gs, err := c.GameServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gs.Status.State != sdk.StateReady || gs.ObjectMeta.Labels["agones.dev/sdk-room"] != "K7QX" ||
		gs.ObjectMeta.Annotations["agones.dev/sdk-note"] != "hello" {
		t.Errorf("GameServer after Ready and metadata: state %q, labels %v, annotations %v",
			gs.Status.State, gs.ObjectMeta.Labels, gs.ObjectMeta.Annotations)
	}
	if gs.ObjectMeta.Name != "demo-ml6gc-55ngm" || gs.ObjectMeta.CreationTimestamp != 1767261600 ||
		gs.Spec.Health.PeriodSeconds != 5 || gs.Status.Lists["players"].Capacity != 8 {
		t.Errorf("GameServer fields: %+v", gs)
	}
	if err := c.Allocate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fake.GameServer().State; got != sdk.StateShutdown {
		t.Errorf("state after Shutdown = %q", got)
	}
	var e *sdk.Error
	if err := c.SetLabel(ctx, "bad key", "x"); !errors.As(err, &e) || e.HTTPStatus != 400 || e.Code != sdk.CodeInvalidArgument {
		t.Errorf("SetLabel with a bad key = %v, want 400 code 3", err)
	}
}

func TestListsAgainstFake(t *testing.T) {
	gs := sdktest.DefaultGameServer()
	gs.Lists["players"] = sdktest.List{Capacity: 2, Values: []string{"p1"}}
	fake := sdktest.New(t, gs)
	c := sdk.New(fake.URL(), nil)
	ctx := ctxT(t)

	type check func(error) bool
	tests := []struct {
		name       string
		call       func() (*sdk.List, error)
		wantErr    check
		wantValues []string
	}{
		{"add existing", func() (*sdk.List, error) { return c.AddListValue(ctx, "players", "p1") }, sdk.IsAlreadyExists, nil},
		{"add", func() (*sdk.List, error) { return c.AddListValue(ctx, "players", "p2") }, nil, []string{"p1", "p2"}},
		{"add to full", func() (*sdk.List, error) { return c.AddListValue(ctx, "players", "p3") }, sdk.IsOutOfRange, nil},
		{"get", func() (*sdk.List, error) { return c.GetList(ctx, "players") }, nil, []string{"p1", "p2"}},
		{"remove", func() (*sdk.List, error) { return c.RemoveListValue(ctx, "players", "p1") }, nil, []string{"p2"}},
		{"remove missing", func() (*sdk.List, error) { return c.RemoveListValue(ctx, "players", "p1") }, sdk.IsNotFound, nil},
		{"unknown list", func() (*sdk.List, error) { return c.GetList(ctx, "seats") }, sdk.IsNotFound, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := tt.call()
			if tt.wantErr != nil {
				if !tt.wantErr(err) {
					t.Fatalf("error %v does not match", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantValues, l.Values); diff != "" || l.Name != "players" || l.Capacity != 2 {
				t.Errorf("list %+v; values (-want +got):\n%s", l, diff)
			}
		})
	}
}

func TestCountersAgainstFake(t *testing.T) {
	gs := sdktest.DefaultGameServer()
	gs.Counters["sessions"] = sdktest.Counter{Count: 0, Capacity: 4}
	fake := sdktest.New(t, gs)
	c := sdk.New(fake.URL(), nil)
	ctx := ctxT(t)
	got, err := c.UpdateCounter(ctx, "sessions", 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&sdk.Counter{Name: "sessions", Count: 3, Capacity: 4}, got); diff != "" {
		t.Errorf("UpdateCounter (-want +got):\n%s", diff)
	}
	if _, err := c.UpdateCounter(ctx, "sessions", 2); !sdk.IsOutOfRange(err) {
		t.Errorf("UpdateCounter past capacity = %v, want out of range", err)
	}
	if _, err := c.UpdateCounter(ctx, "sessions", -4); !sdk.IsOutOfRange(err) {
		t.Errorf("UpdateCounter below 0 = %v, want out of range", err)
	}
	if got, err := c.GetCounter(ctx, "sessions"); err != nil || got.Count != 3 {
		t.Errorf("GetCounter = %+v, %v; want count 3", got, err)
	}
	if _, err := c.GetCounter(ctx, "nope"); !sdk.IsNotFound(err) {
		t.Errorf("GetCounter(nope) = %v, want not found", err)
	}
}

func TestWatchAgainstFake(t *testing.T) {
	fake := sdktest.New(t, sdktest.DefaultGameServer())
	c := sdk.New(fake.URL(), nil)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	seen := make(chan *sdk.GameServer, 16)
	done := make(chan error, 1)
	go func() { done <- c.WatchGameServer(ctx, func(gs *sdk.GameServer) { seen <- gs }) }()
	next := func() *sdk.GameServer {
		t.Helper()
		select {
		case gs := <-seen:
			return gs
		case <-time.After(5 * time.Second):
			t.Fatal("no watch event within 5s")
		}
		return nil
	}
	if got := next().Status.State; got != sdk.StateScheduled {
		t.Errorf("first event state %q, want Scheduled", got)
	}
	fake.Allocate(sdktest.Allocation{
		Labels:    map[string]string{"usher.dev/room": "K7QX"},
		AddValues: map[string][]string{"players": {"p1"}},
	})
	gs := next()
	if gs.Status.State != sdk.StateAllocated || gs.ObjectMeta.Labels["usher.dev/room"] != "K7QX" ||
		!gs.Status.Lists["players"].Contains("p1") {
		t.Errorf("after Allocate: %+v", gs)
	}
	fake.FailWatches(sdk.CodeUnavailable, "sidecar stopping")
	select {
	case err := <-done:
		var e *sdk.Error
		if !errors.As(err, &e) || e.Code != sdk.CodeUnavailable || e.Message != "sidecar stopping" {
			t.Errorf("WatchGameServer = %v, want the stream's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchGameServer did not return after the stream failed")
	}

	go func() { done <- c.WatchGameServer(ctx, func(gs *sdk.GameServer) { seen <- gs }) }()
	next()
	fake.EndWatches()
	select {
	case err := <-done:
		if !errors.Is(err, sdk.ErrStreamEnded) {
			t.Errorf("WatchGameServer = %v, want ErrStreamEnded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchGameServer did not return after the stream ended")
	}
}

func TestLateSidecar(t *testing.T) {
	fake := sdktest.NewLate(t, sdktest.DefaultGameServer())
	c := sdk.New(fake.URL(), nil)
	ctx := ctxT(t)
	if err := c.Ready(ctx); err == nil {
		t.Fatal("Ready before the sidecar listens succeeded")
	}
	fake.Start()
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready once the sidecar listens: %v", err)
	}
}
