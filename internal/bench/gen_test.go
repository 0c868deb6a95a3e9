package bench

import (
	"testing"
	"time"
)

func TestSlotting(t *testing.T) {
	const L = 100
	sl := slotting{base: 1000, length: L, of: 3, at: 1} // path 1 owns [1100,1200), [1400,1500), …
	for _, c := range []struct{ t, want int64 }{
		{1100, 1100}, {1199, 1199}, // in its slot: unchanged
		{1200, 1400}, {1250, 1450}, {1399, 1499}, // after: the next one, same offset in the slot
		{1000, 1100}, {1050, 1150}, // before
		{950, 1150}, {850, 850}, {800, 800}, {750, 850}, // before base (the warm-up): slot −1 is path 2, −2 path 1, −3 path 0
	} {
		if got := sl.next(c.t); got != c.want {
			t.Errorf("next(%d) = %d, want %d", c.t, got, c.want)
		}
		if got := sl.owner(sl.next(c.t)); got != 1 {
			t.Errorf("owner(next(%d)) = %d, want 1", c.t, got)
		}
	}
	// Every time lands in exactly one path's slots, in turn.
	for tt := int64(0); tt < 2000; tt += 7 {
		want := int((((tt - 1000) / L % 3) + 3) % 3)
		if tt < 1000 && (tt-1000)%L != 0 {
			want = int((((tt-1000)/L-1)%3 + 3) % 3)
		}
		if got := sl.owner(tt); got != want {
			t.Fatalf("owner(%d) = %d, want %d", tt, got, want)
		}
	}
	if (slotting{}).next(1234) != 1234 || (slotting{length: L, of: 1}).next(1234) != 1234 {
		t.Error("a zero or one-path slotting moved a send")
	}
}

func TestSlottingAbs(t *testing.T) {
	sl := slotting{base: 1000, length: 100, of: 3, at: 1}
	for _, c := range []struct{ a, want int64 }{{0, 1100}, {99, 1199}, {100, 1400}, {250, 1750}} {
		if got := sl.abs(c.a); got != c.want || sl.owner(got) != 1 {
			t.Errorf("abs(%d) = %d (path %d), want %d in path 1's slots", c.a, got, sl.owner(got), c.want)
		}
	}
	if got := (slotting{base: 1000}).abs(250); got != 1250 {
		t.Errorf("abs without slots = %d, want 1250", got)
	}
}

// TestInterleavedSchedule lays out interleaved windows as load does and follows every
// connection's paced sends through slotting.next as the generator does: each path sends as much
// as it would have alone (players × rate × window), the warm-up included, and only in its turns.
func TestInterleavedSchedule(t *testing.T) {
	const ms = int64(time.Millisecond)
	for _, c := range []struct {
		warmup, turn, window time.Duration
		n                    int
		period               int64
	}{
		{2 * time.Second, 5 * time.Second, 20 * time.Second, 3, 50 * ms}, // bench:game
		{2 * time.Second, 500 * time.Millisecond, 10 * time.Second, 3, 50 * ms},
		{200 * time.Millisecond, 250 * time.Millisecond, time.Second, 3, 10 * ms}, // TestRunProfiles
		{0, time.Second, 3 * time.Second, 2, 100 * ms},
		{2 * time.Second, 5 * time.Second, 10 * time.Second, 3, 1000 * ms}, // the light phase: 1/s
	} {
		now := int64(12_345_678_901)
		start, slot, slots := schedule(now, c.warmup, c.turn, c.window, c.n)
		end := start + int64(slots)*int64(slot)
		if slot != c.turn || slots%c.n != 0 || time.Duration(slots/c.n)*slot != c.window {
			t.Errorf("%+v: %d slots of %v, want turns of %v adding up to %v per path", c, slots, slot, c.turn, c.window)
		}
		if warm := time.Duration(start-now) / time.Duration(c.n); warm < c.warmup || warm >= c.warmup+c.turn {
			t.Errorf("%+v: %v of warm-up per path, want whole turns covering %v", c, warm, c.warmup)
		}
		const conns = 40
		for at := range c.n {
			sl := slotting{base: start, length: int64(slot), of: c.n, at: at}
			sent, warm := 0, 0
			for k := range conns {
				for due := sl.next(now + int64(k)*c.period/conns); due < end; due = sl.next(due + c.period) {
					if sl.owner(due) != at {
						t.Fatalf("%+v path %d: a send at %d in path %d's turn", c, at, due, sl.owner(due))
					}
					if due >= start {
						sent++
					} else {
						warm++
					}
				}
			}
			if want := conns * int(int64(c.window)/c.period); sent != want {
				t.Errorf("%+v path %d: %d sends in the window, want %d (as alone)", c, at, sent, want)
			}
			if want := conns * int((start-now)/int64(c.n)/c.period); c.warmup > 0 && warm != want {
				t.Errorf("%+v path %d: %d warm-up sends, want %d (a turn's worth each)", c, at, warm, want)
			}
		}
	}
}
