package redis

import (
	"context"
	"math"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Limiter counts requests per key in Redis with exactly the sliding window of Fiber's limiter
// (limiter.SlidingWindow): hits in the current window plus the previous window's hits weighted
// by how much of it still overlaps. Each hit is one Lua script, so the count is atomic across
// every replica, and time is Redis's own clock, so replicas with skewed clocks agree.
type Limiter struct{ c *Client }

// Limiter returns the rate limiter on c.
func (c *Client) Limiter() *Limiter { return &Limiter{c: c} }

// slidingScript is Fiber's SlidingWindow.New, one hit at a time, on a hash {p, c, e}:
// previous window's hits, current window's hits, and when the current window ends (Unix
// seconds). KEYS[1] the counter; ARGV[1] window in seconds, ARGV[2] max. Returns
// {remaining, seconds until the window ends}.
var slidingScript = goredis.NewScript(`
local ts = tonumber(redis.call('TIME')[1])
local exp = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'p', 'c', 'e')
local p, c, e = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0
if e == 0 then
  e = ts + exp
elseif ts >= e then
  local elapsed = ts - e
  if elapsed >= exp then
    p, c, e = 0, 0, ts + exp
  else
    p, c, e = c, 0, ts + exp - elapsed
  end
end
c = c + 1
local reset = e - ts
local rate = math.floor(p * reset / exp) + c
redis.call('HSET', KEYS[1], 'p', p, 'c', c, 'e', e)
redis.call('EXPIRE', KEYS[1], reset + exp)
return {tonumber(ARGV[2]) - rate, reset}
`)

// Hit counts one request for key against max per window and returns how many remain (negative:
// refused) and how long until the current window ends (the Retry-After of a refusal).
func (l *Limiter) Hit(ctx context.Context, key string, max int, window time.Duration) (remaining int, reset time.Duration, err error) {
	secs := int64(math.Ceil(window.Seconds()))
	if secs < 1 {
		secs = 1
	}
	res, err := slidingScript.Run(ctx, l.c.rdb, []string{l.c.key("rate", key)}, secs, max).Int64Slice()
	if err != nil {
		return 0, 0, unavailable("rate limit", err)
	}
	return int(res[0]), time.Duration(res[1]) * time.Second, nil
}
