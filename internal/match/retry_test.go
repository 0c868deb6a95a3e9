package match

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestRetryWaits: the policy's waits follow its backoff on the injected clock, start near
// Agones' batch window, grow, and stop before the deadline.
func TestRetryWaits(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	defer autoStep(clk)()
	r := NewRetry(3*time.Second, clk)
	var at []time.Duration
	err := r.Do(context.Background(), func(context.Context) error {
		at = append(at, clk.Since(t0))
		return fmt.Errorf("busy: %w: %w", ErrRetry, ErrNoCapacity)
	})
	if !errors.Is(err, ErrNoCapacity) {
		t.Fatalf("err = %v, want the last attempt's ErrNoCapacity", err)
	}
	if len(at) < 3 || at[0] != 0 {
		t.Fatalf("tried at %v: want a first try at once and several more", at)
	}
	// The fake clock moves 10ms at a time: a wait ends up to 10ms late.
	first := at[1] - at[0]
	if first < 400*time.Millisecond || first > 610*time.Millisecond {
		t.Errorf("first wait %v, want 400ms to 600ms (near Agones' 500ms batch window)", first)
	}
	if second := at[2] - at[1]; second < 600*time.Millisecond || second > 910*time.Millisecond {
		t.Errorf("second wait %v, want 600ms to 900ms", second)
	}
	if last := at[len(at)-1]; last > 3*time.Second {
		t.Errorf("last try at %v, past the 3s wait", last)
	}
	if end := clk.Since(t0); end > 3*time.Second {
		t.Errorf("gave up at %v, want by the 3s deadline", end)
	}
}

func TestRetryStopsOnSuccessAndOtherErrors(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	defer autoStep(clk)()
	r := NewRetry(time.Minute, clk)
	n := 0
	err := r.Do(context.Background(), func(context.Context) error {
		n++
		if n < 3 {
			return fmt.Errorf("%w: %w", ErrRetry, ErrNoCapacity)
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("Do = %v after %d tries, want nil after 3", err, n)
	}
	n = 0
	err = r.Do(context.Background(), func(context.Context) error { n++; return ErrRoomFull })
	if !errors.Is(err, ErrRoomFull) || n != 1 {
		t.Errorf("Do = %v after %d tries, want ErrRoomFull after 1", err, n)
	}
}

// TestRetryNests: a retry inside another keeps to the outer one's deadline, so waits do
// not add up.
func TestRetryNests(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	defer autoStep(clk)()
	outer := NewRetry(2*time.Second, clk)
	inner := NewRetry(10*time.Second, clk)
	_ = outer.Do(context.Background(), func(ctx context.Context) error {
		if d, ok := Deadline(ctx); !ok || !d.Equal(t0.Add(2*time.Second)) {
			t.Errorf("Deadline = %v, %v; want %v", d, ok, t0.Add(2*time.Second))
		}
		return inner.Do(ctx, func(context.Context) error { return fmt.Errorf("%w: %w", ErrRetry, ErrNoCapacity) })
	})
	if end := clk.Since(t0); end > 2*time.Second {
		t.Errorf("nested retries ended at %v, want by the outer 2s deadline", end)
	}
}

func TestRetryCanceled(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	r := NewRetry(time.Minute, clk)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- r.Do(ctx, func(context.Context) error { return fmt.Errorf("%w: %w", ErrRetry, ErrNoCapacity) })
	}()
	for !clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrNoCapacity) {
		t.Errorf("err = %v, want context.Canceled joined to the last error", err)
	}
}
