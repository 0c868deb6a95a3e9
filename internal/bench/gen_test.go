package bench

import "testing"

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
