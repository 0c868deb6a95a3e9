package exampleserver

import (
	"bytes"
	"testing"

	"github.com/fasthttp/websocket"
)

func TestEchoMode(t *testing.T) {
	h := start(t, Config{Echo: true})
	h.bridge.allocate("K7QX", 4)
	p1, _ := h.join(t, "p1")
	p2, _ := h.join(t, "p2")

	big := make([]byte, DefaultMaxMessageBytes) // exactly at the limit: the buffer grows
	for i := range big {
		big[i] = byte(i * 7)
	}
	sent := []struct {
		typ  int
		data []byte
	}{
		{websocket.TextMessage, []byte(`{"op":"move","x":1}`)},
		{websocket.BinaryMessage, []byte{0, 1, 2, 0xff, 0xfe}},
		{websocket.BinaryMessage, []byte{}},
		{websocket.BinaryMessage, big},
		{websocket.TextMessage, []byte("after the big one")},
	}
	for _, m := range sent {
		send(t, p1, m.typ, m.data)
	}
	for i, m := range sent {
		typ, got := readMessage(t, p1)
		if typ != m.typ || !bytes.Equal(got, m.data) {
			t.Fatalf("echo %d: got type %d, %d bytes; want type %d, %d bytes, unchanged", i, typ, len(got), m.typ, len(m.data))
		}
	}
	// p2 got none of p1's messages: its next message is its own echo.
	send(t, p2, websocket.BinaryMessage, []byte("from p2"))
	if typ, got := readMessage(t, p2); typ != websocket.BinaryMessage || string(got) != "from p2" {
		t.Fatalf("p2 read type %d %q, want its own echo", typ, got)
	}
}

func TestEchoModeTooBig(t *testing.T) {
	h := start(t, Config{Echo: true, MaxMessageBytes: 16})
	h.bridge.allocate("K7QX", 4)
	p1, _ := h.join(t, "p1")
	send(t, p1, websocket.BinaryMessage, make([]byte, 17))
	expectClose(t, p1, websocket.CloseMessageTooBig, "")
}
