package proxy_test

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// TestMixedStreamAnySplit sends a stream that moves the reader between its fast path (whole
// small frames, pings) and readMessage (a message over the read buffer, a fragmented one),
// written at once, in two halves and in dribbles, so frames and headers arrive split across
// reads. Every message comes back once, unchanged and in order.
func TestMixedStreamAnySplit(t *testing.T) {
	h := newHarness(t, testConfig())
	up := newUpstream(t, echo)

	big := bytes.Repeat([]byte("0123456789"), 500) // 5000 bytes: over the 4 KiB read buffer
	mid := bytes.Repeat([]byte{0xAB}, 200)
	var stream []byte
	add := func(b []byte) { stream = append(stream, b...) }
	add(frame(0x81, []byte("a"), false))
	add(frame(0x89, []byte("p1"), false)) // ping: Usher answers it
	add(frame(0x82, mid, false))
	add(frame(0x82, big, false))
	add(frame(0x01, []byte("frag-"), false)) // text, not final
	add(frame(0x89, []byte("p2"), false))    // a ping between fragments
	add(frame(0x00, []byte("ment-"), false))
	add(frame(0x80, []byte("ed"), false))
	add(frame(0x82, bytes.Repeat([]byte{1}, 126), false))
	add(frame(0x81, []byte("z"), false))
	want := [][]byte{[]byte("a"), mid, big, []byte("frag-ment-ed"), bytes.Repeat([]byte{1}, 126), []byte("z")}

	splits := map[string]func(rc *rawClient){
		"at once": func(rc *rawClient) { rc.send(stream) },
		"halves": func(rc *rawClient) {
			half := len(stream) / 2
			rc.send(stream[:half])
			time.Sleep(20 * time.Millisecond)
			rc.send(stream[half:])
		},
		"dribbled": func(rc *rawClient) {
			rng := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < len(stream); {
				n := min(1+rng.IntN(9), len(stream)-i)
				if i > 1000 && i < len(stream)-1000 {
					n = min(700, len(stream)-i) // quicker through the middle of the big frame
				}
				rc.send(stream[i : i+n])
				i += n
				time.Sleep(time.Millisecond)
			}
		},
	}
	for name, send := range splits {
		t.Run(name, func(t *testing.T) {
			rc := h.rawDial(up, "p-"+name)
			go send(rc)
			pongs := 0
			for i := 0; i < len(want); {
				b0, p, err := rc.readFrame()
				if err != nil {
					t.Fatalf("after %d messages: %v", i, err)
				}
				if b0 == 0x8A {
					pongs++
					continue
				}
				if b0&0x0F == 0x8 {
					t.Fatalf("closed after %d messages: %q", i, p)
				}
				if !bytes.Equal(p, want[i]) {
					t.Fatalf("message %d: got %d bytes %.20q, want %d bytes %.20q", i, len(p), p, len(want[i]), want[i])
				}
				i++
			}
			for pongs < 2 {
				b0, _, err := rc.readFrame()
				if err != nil {
					t.Fatalf("pongs: got %d, want 2: %v", pongs, err)
				}
				if b0 == 0x8A {
					pongs++
				}
			}
		})
	}
}
