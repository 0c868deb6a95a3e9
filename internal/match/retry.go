package match

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
)

// DefaultBackoff is Usher's allocation retry backoff, declared once as Agones declares its
// own (allocationRetry, a wait.Backoff). The first wait is near Agones' allocation batch
// window (500 ms, allocationBatchWaitTime): an allocation that lost a batch cannot win
// before the next one. Waits are jittered (each 0.4 s to 0.6 s at first) so that joins
// that failed together do not retry together, and grow by half up to 1.5 s.
func DefaultBackoff() wait.Backoff {
	return wait.Backoff{Duration: 400 * time.Millisecond, Factor: 1.5, Jitter: 0.5, Steps: 1 << 30, Cap: 1500 * time.Millisecond}
}

// Retry is the one retry policy Usher applies to allocations, wherever it retries: the
// match service when no game server is free, the Agones fleet on Contention and on a
// room that is busy (UnAllocated with free seats). Waits follow Backoff on Clock; the
// whole retry ends by Wait after it began (--allocation-wait).
//
// Retries nest without adding up: Do records its deadline in the context it passes on,
// and a Do inside keeps to the earlier of its own deadline and that one.
type Retry struct {
	Backoff wait.Backoff
	Wait    time.Duration
	Clock   clock.Clock
}

// NewRetry returns the policy with DefaultBackoff, total wait, and clk (the real clock
// when nil).
func NewRetry(total time.Duration, clk clock.Clock) Retry {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return Retry{Backoff: DefaultBackoff(), Wait: total, Clock: clk}
}

type deadlineKey struct{}

// Deadline is when the retry ctx belongs to ends (and whether it is inside one).
func Deadline(ctx context.Context) (time.Time, bool) {
	d, ok := ctx.Value(deadlineKey{}).(time.Time)
	return d, ok
}

// Start returns ctx carrying this retry's deadline: now + Wait, or the deadline ctx
// already carries if that is earlier.
func (r Retry) Start(ctx context.Context) (context.Context, time.Time) {
	deadline := r.Clock.Now().Add(r.Wait)
	if outer, ok := Deadline(ctx); ok && outer.Before(deadline) {
		deadline = outer
	}
	return context.WithValue(ctx, deadlineKey{}, deadline), deadline
}

// ErrRetry is returned by a Do attempt that wants to be tried again; wrap the reason
// with it (fmt.Errorf("room busy: %w: %w", ErrRetry, ErrNoCapacity)). When the time is
// up, Do returns the last attempt's error with ErrRetry's message left in.
var ErrRetry = errors.New("retryable")

// Do calls try until it returns an error that is not ErrRetry (or nil), the next wait
// would end past the deadline, or ctx is done (then ctx's error joined to the last one).
func (r Retry) Do(ctx context.Context, try func(ctx context.Context) error) error {
	ctx, deadline := r.Start(ctx)
	b := r.Backoff
	for {
		err := try(ctx)
		if !errors.Is(err, ErrRetry) {
			return err
		}
		d := b.Step()
		if r.Clock.Now().Add(d).After(deadline) {
			return err
		}
		if werr := r.Sleep(ctx, d); werr != nil {
			return errors.Join(werr, err)
		}
	}
}

// Sleep waits d on the policy's clock, or until ctx is done.
func (r Retry) Sleep(ctx context.Context, d time.Duration) error {
	t := r.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}
