// Package redis keeps the state Usher's replicas share in Redis (or Valkey): tickets, rate-limit
// counters, the room each player holds and room-code claims. With it, any replica redeems a
// ticket another issued, limits hold across replicas, and no two replicas hand out one code.
//
// It speaks to one Redis instance (not Redis Cluster) through go-redis. Every operation that
// must be atomic across replicas is one Redis command or one Lua script. When Redis cannot be
// reached, every call fails with an error wrapping ErrUnavailable, which the API answers
// 503 unavailable with Retry-After.
package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ErrUnavailable wraps every error that comes from Redis being unreachable, slow or failing:
// the request may succeed if tried again shortly.
var ErrUnavailable = errors.New("shared store (Redis) unavailable")

// DefaultPrefix starts every key Usher writes, so one Redis may serve other programs too.
const DefaultPrefix = "usher:"

// Options says how to reach Redis.
type Options struct {
	// URL is redis://[user:password@]host:port[/db] or rediss:// (TLS).
	URL string
	// Password, when set, replaces the URL's (USHER_REDIS_PASSWORD: a secret kept out of the
	// URL and the process list).
	Password string
	// Prefix starts every key; empty means DefaultPrefix.
	Prefix string
	// Timeout bounds each command (dial, read and write). Default 1s: a join must not hang on
	// a sick Redis.
	Timeout time.Duration
}

// Client is a connection pool to Redis and the key prefix Usher uses there.
type Client struct {
	rdb    *goredis.Client
	prefix string
}

// CheckURL reports whether u is a redis:// or rediss:// URL go-redis understands.
func CheckURL(u string) error {
	pu, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	if pu.Scheme != "redis" && pu.Scheme != "rediss" {
		return fmt.Errorf("redis url: scheme must be redis:// or rediss://, got %q", pu.Scheme)
	}
	if _, err := goredis.ParseURL(u); err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	return nil
}

// Open returns a Client for o. It does not connect: Redis may come up after Usher, and Ping
// (readiness) says when it is there.
func Open(o Options) (*Client, error) {
	if err := CheckURL(o.URL); err != nil {
		return nil, err
	}
	ro, err := goredis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	if o.Password != "" {
		ro.Password = o.Password
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = o.Timeout, o.Timeout, o.Timeout
	ro.PoolTimeout = o.Timeout
	// One retry of a command, one dial per attempt: with Redis down a join answers 503 at
	// once rather than after go-redis's default dial retries (5 × 100 ms, twice).
	ro.MaxRetries = 1
	ro.DialerRetries = 1
	// Plain RESP2 and no client-side features: the commands used here need nothing more, and
	// Valkey and older Redis answer them alike.
	ro.Protocol = 2
	ro.DisableIdentity = true
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	return &Client{rdb: goredis.NewClient(ro), prefix: o.Prefix}, nil
}

// Ping checks that Redis answers, for /readyz.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Close closes the connection pool.
func (c *Client) Close() error { return c.rdb.Close() }

// key is the full name of a key of the given kind.
func (c *Client) key(kind, name string) string { return c.prefix + kind + ":" + name }

// unavailable wraps a Redis error as ErrUnavailable, keeping a cancelled or timed-out
// context recognisable too.
func unavailable(op string, err error) error {
	return fmt.Errorf("redis %s: %w: %w", op, ErrUnavailable, err)
}
