package bench

import (
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := int64(1); i <= 100000; i++ {
		h.record(i * 1000) // 1 µs … 100 ms, uniform
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0.999, 99900 * time.Microsecond}, {0.00001, time.Microsecond}} {
		got := h.quantile(tc.q)
		if d := float64(got-tc.want) / float64(tc.want); d > 0.02 || d < -0.02 {
			t.Errorf("quantile(%v) = %v, want %v ± 2%%", tc.q, got, tc.want)
		}
	}
	if h.quantile(1) != 100*time.Millisecond {
		t.Errorf("quantile(1) = %v, want the max", h.quantile(1))
	}
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Error("empty histogram: want 0")
	}
	for v := int64(0); v < 1<<20; v += 7 {
		if mid := bucketMid(bucketOf(v)); float64(mid-v) > float64(v)/64+1 || float64(v-mid) > float64(v)/64+1 {
			t.Fatalf("value %d: bucket middle %d is more than 1/64 away", v, mid)
		}
	}
}

func TestHistogramSub(t *testing.T) {
	var h histogram
	for i := range 100 {
		h.record(int64(i) * 1000)
	}
	before := h
	for range 50 {
		h.record(5_000_000) // 5 ms each
	}
	h.record(1000)
	h.sub(&before)
	if h.n != 51 || h.quantile(0.5) < 4_900_000 || h.quantile(0.01) > 1100 {
		t.Errorf("after sub: n %d, p50 %v, p1 %v; want the 51 recorded since: p50 about 5 ms, p1 about 1 µs", h.n, h.quantile(0.5), h.quantile(0.01))
	}
	if h.max < 4_900_000 || h.max > 5_100_000 {
		t.Errorf("after sub: max %d, want about 5 ms", h.max)
	}
}
