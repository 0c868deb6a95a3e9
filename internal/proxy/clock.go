package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// clock is a coarse monotonic clock for the hot path: reading it is one atomic load instead of
// time.Now per message. A ticker goroutine advances it only while sessions exist.
type clock struct {
	base time.Time     // carries a monotonic reading; at() builds deadlines from it
	res  time.Duration // tick interval
	now  atomic.Int64  // ns since base, at most res old

	mu    sync.Mutex
	users int
	stop  chan struct{}
}

// Now returns the coarse time in nanoseconds since base.
func (c *clock) Now() int64 { return c.now.Load() }

// fresh reads the time now (not the coarse reading), in the clock's units.
func (c *clock) fresh() int64 { return int64(time.Since(c.base)) }

// at converts a coarse time to a time.Time suitable for a deadline.
func (c *clock) at(ns int64) time.Time { return c.base.Add(time.Duration(ns)) }

// acquire starts the ticker when the first user arrives.
func (c *clock) acquire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users++
	if c.users == 1 {
		c.now.Store(int64(time.Since(c.base)))
		c.stop = make(chan struct{})
		go c.run(c.stop)
	}
}

// release stops the ticker when the last user leaves.
func (c *clock) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users--
	if c.users == 0 {
		close(c.stop)
		c.stop = nil
	}
}

func (c *clock) run(stop <-chan struct{}) {
	t := time.NewTicker(c.res)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			c.now.Store(int64(time.Since(c.base)))
		}
	}
}

// bucket is a token bucket over the coarse clock. It is used by one goroutine only.
type bucket struct {
	rate   int64 // tokens per second; 0 means unlimited
	max    int64 // capacity in nano-tokens (burst × 1e9)
	tokens int64 // nano-tokens: one token is 1e9
	last   int64 // coarse time of the last refill
}

const nanoToken = int64(time.Second)

// newBucket returns a full bucket allowing rate tokens per second with a burst of 2×rate.
func newBucket(rate int, now int64) bucket {
	b := bucket{rate: int64(rate), last: now}
	b.max = 2 * b.rate * nanoToken
	b.tokens = b.max
	return b
}

// take spends one token, reporting false when the bucket is empty.
func (b *bucket) take(now int64) bool {
	if b.rate == 0 {
		return true
	}
	if d := now - b.last; d > 0 {
		b.last = now
		if d >= b.max/b.rate { // refills completely; also keeps d*rate from overflowing
			b.tokens = b.max
		} else if b.tokens += d * b.rate; b.tokens > b.max {
			b.tokens = b.max
		}
	}
	if b.tokens < nanoToken {
		return false
	}
	b.tokens -= nanoToken
	return true
}
