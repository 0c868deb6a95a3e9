package proxy

import "sync"

// buffer is a pooled byte slice. Pools hold *buffer so that Put does not allocate.
type buffer struct {
	b     []byte
	class int
}

// bufPool hands out buffers in size classes growing by 4× from min up to max (the last class
// is exactly max).
type bufPool struct {
	sizes []int
	pools []sync.Pool
}

func newBufPool(min, max int) *bufPool {
	var sizes []int
	for n := min; n < max; n *= 4 {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, max)
	return &bufPool{sizes: sizes, pools: make([]sync.Pool, len(sizes))}
}

// get returns a buffer of at least n bytes (n must not exceed the largest class).
func (p *bufPool) get(n int) *buffer {
	c := 0
	for c < len(p.sizes)-1 && p.sizes[c] < n {
		c++
	}
	if v, ok := p.pools[c].Get().(*buffer); ok {
		return v
	}
	return &buffer{b: make([]byte, p.sizes[c]), class: c}
}

func (p *bufPool) put(b *buffer) {
	if b != nil {
		p.pools[b.class].Put(b)
	}
}
