package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// cacheShards is how many independently locked parts a verifyCache has at most, so concurrent
// joins rarely wait on the same mutex.
const cacheShards = 64

// cacheKey is the SHA-256 of a token. Keying by the digest rather than the token string keeps
// every entry the same small size whatever the token's length, and keeps no reference to the
// caller's string. SHA-256 is collision resistant, so no other string can be made to land on a
// cached token's entry and be answered with its claims.
type cacheKey [sha256.Size]byte

// keyOf returns the cache key of token, which must be at most maxTokenLen bytes. Copying into a
// buffer on the stack avoids the heap allocation of []byte(token).
func keyOf(token string) cacheKey {
	var buf [maxTokenLen]byte
	n := copy(buf[:], token)
	return sha256.Sum256(buf[:n])
}

// cacheEntry is what a token that passed full verification said: the claims Verify returns, and
// the not-before time needed to repeat the time checks.
type cacheEntry struct {
	claims    Claims
	notBefore time.Time
	hasNBF    bool
}

// verifyCache is a bounded map from verified tokens to their entries, split into shards by the
// key's first byte. A full shard drops an arbitrary entry to make room. It is safe for
// concurrent use.
type verifyCache struct {
	shards []cacheShard
	mask   int // len(shards)-1; len(shards) is a power of two
}

type cacheShard struct {
	mu  sync.Mutex
	m   map[cacheKey]cacheEntry
	max int
	_   [64]byte // keeps the locks of neighbouring shards off one cache line
}

// newVerifyCache returns a cache that holds at most size entries in total (size >= 1).
func newVerifyCache(size int) *verifyCache {
	n := cacheShards
	for n > size {
		n /= 2
	}
	c := &verifyCache{shards: make([]cacheShard, n), mask: n - 1}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]cacheEntry)
		c.shards[i].max = size / n
		if i < size%n {
			c.shards[i].max++ // spread the remainder, so the maxima add up to size exactly
		}
	}
	return c
}

func (c *verifyCache) shard(k cacheKey) *cacheShard {
	return &c.shards[int(k[0])&c.mask]
}

func (c *verifyCache) get(k cacheKey) (cacheEntry, bool) {
	s := c.shard(k)
	s.mu.Lock()
	e, ok := s.m[k]
	s.mu.Unlock()
	return e, ok
}

func (c *verifyCache) add(k cacheKey, e cacheEntry) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok && len(s.m) >= s.max {
		// Go starts each map iteration at a random place, so this drops an arbitrary entry
		// without scanning the shard.
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	s.m[k] = e
}

func (c *verifyCache) remove(k cacheKey) {
	s := c.shard(k)
	s.mu.Lock()
	delete(s.m, k)
	s.mu.Unlock()
}

// len returns how many entries the cache holds.
func (c *verifyCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
