package proxy_test

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/usher-gg/usher/internal/proxy"
)

// The benchmarks use a hand-written client and echo server that do not allocate per message,
// so that B/op and allocs/op are the proxy's own. Each runs "direct" (client → echo server)
// and "usher" (client → Usher → echo server) in the same process, for side-by-side figures:
//
//	go test -run '^$' -bench . -benchmem ./internal/proxy/

// BenchmarkRelay measures one round trip of a message through the relay and back (two relayed
// messages per op): sequentially (latency) and from many sessions at once (throughput).
func BenchmarkRelay(b *testing.B) {
	echoAddr := startRawEcho(b)
	cfg := proxy.Config{MaxMessagesPerSecond: 0} // no rate limit: the benchmark sends as fast as it can
	h := newHarness(b, cfg)
	for _, size := range []int{64, 1024} {
		for _, via := range []string{"direct", "usher"} {
			b.Run(fmt.Sprintf("%s/%dB", via, size), func(b *testing.B) {
				c := dialRaw(b, h, via, echoAddr)
				b.ReportAllocs()
				b.SetBytes(int64(2 * size))
				c.roundTrips(b, size, b.N)
			})
			b.Run(fmt.Sprintf("%s/%dB/parallel", via, size), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(2 * size))
				b.SetParallelism(8) // 8 sessions per CPU
				var mu sync.Mutex
				b.RunParallel(func(pb *testing.PB) {
					mu.Lock()
					c := dialRaw(b, h, via, echoAddr)
					mu.Unlock()
					for pb.Next() {
						c.roundTrips(b, size, 1)
					}
				})
			})
		}
	}
}

// BenchmarkIdleSessions opens 1000 sessions, measures the Go heap and stacks they hold while
// idle, and closes them. It reports bytes per idle session for direct connections and through
// Usher; the difference is Usher's cost per proxied player (both legs, fasthttp included).
func BenchmarkIdleSessions(b *testing.B) {
	const n = 1000
	echoAddr := startRawEcho(b)
	hs := map[string]*harness{
		"usher":                   newHarness(b, proxy.Config{}),
		"usher-keephijackedconns": newHarness(b, proxy.Config{}, keepHijackedConns),
	}
	perConn := map[string]float64{}
	for _, name := range []string{"direct", "usher", "usher-keephijackedconns"} {
		h, via := hs["usher"], name
		if name != "direct" {
			h, via = hs[name], "usher"
		}
		b.Run(name, func(b *testing.B) {
			var total float64
			for range b.N {
				before := memInUse()
				start := time.Now()
				conns := make([]*rawWS, 0, n)
				for range n {
					conns = append(conns, dialRaw(b, h, via, echoAddr))
				}
				connectTime := time.Since(start)
				if via == "usher" {
					waitFor(b, 10*time.Second, "sessions", func() bool { return h.p.Sessions() == n })
				}
				time.Sleep(100 * time.Millisecond) // let transient goroutines exit
				total += float64(memInUse()-before) / n
				b.ReportMetric(float64(n)/connectTime.Seconds(), "connects/s")
				for _, c := range conns {
					_ = c.nc.Close()
				}
				if via == "usher" {
					waitFor(b, 10*time.Second, "sessions to end", func() bool { return h.p.Sessions() == 0 })
				}
			}
			perConn[name] = total / float64(b.N)
			b.ReportMetric(perConn[name], "B/idle-session")
			if d, ok := perConn["direct"]; ok && via == "usher" {
				b.ReportMetric(perConn[name]-d, "B/proxied-player")
			}
		})
	}
}

// memInUse returns heap and stack bytes in use after a full collection.
func memInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// rawWS is a minimal WebSocket client over a raw connection: it writes pre-masked frames and
// reads frames into a fixed buffer, answering pings, without allocating.
type rawWS struct {
	nc   net.Conn
	br   *bufio.Reader
	out  []byte // the frame to send, masked
	size int    // its payload size
	in   []byte
	hdr  [14]byte
}

func dialRaw(tb testing.TB, h *harness, via, echoAddr string) *rawWS {
	tb.Helper()
	addr, uri := echoAddr, "/"
	if via == "usher" {
		u, _ := url.Parse(h.base)
		addr, uri = u.Host, u.Path+"?"+url.Values{"addr": {echoAddr}, "player": {"bench"}}.Encode()
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = nc.Close() })
	req := "GET " + uri + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		tb.Fatal(err)
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		tb.Fatalf("handshake via %s: %v %v", via, resp, err)
	}
	return &rawWS{nc: nc, br: br, in: make([]byte, 64<<10)}
}

// roundTrips sends a binary message of size bytes and reads it back, n times.
func (c *rawWS) roundTrips(tb testing.TB, size, n int) {
	if c.size != size {
		c.size = size
		c.out = append(c.out[:0], 0x82, 0x80|126, byte(size>>8), byte(size))
		if size <= 125 {
			c.out = append(c.out[:0], 0x82, 0x80|byte(size))
		}
		c.out = append(c.out, 1, 2, 3, 4) // mask key
		for i := range size {
			c.out = append(c.out, byte(i)^byte(i%4+1))
		}
	}
	for range n {
		if _, err := c.nc.Write(c.out); err != nil {
			tb.Fatal(err)
		}
		for {
			op, p, err := readFrame(c.br, c.hdr[:], c.in)
			if err != nil {
				tb.Fatal(err)
			}
			if op == 0x9 { // ping: answer with an empty masked pong
				_, _ = c.nc.Write([]byte{0x8A, 0x80, 0, 0, 0, 0})
				continue
			}
			if len(p) != size {
				tb.Fatalf("echo: %d bytes, want %d", len(p), size)
			}
			break
		}
	}
}

// readFrame reads one final frame into buf, unmasking it. It allocates nothing.
func readFrame(br *bufio.Reader, hdr, buf []byte) (op byte, payload []byte, err error) {
	if _, err := io.ReadFull(br, hdr[:2]); err != nil {
		return 0, nil, err
	}
	if hdr[0]&0x80 == 0 {
		return 0, nil, errors.New("fragmented frame")
	}
	n := int(hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(br, hdr[2:4]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint16(hdr[2:4]))
	case 127:
		return 0, nil, errors.New("frame too large")
	}
	var key []byte
	if hdr[1]&0x80 != 0 {
		if _, err := io.ReadFull(br, hdr[4:8]); err != nil {
			return 0, nil, err
		}
		key = hdr[4:8]
	}
	payload = buf[:n]
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	if key != nil {
		for i := range payload {
			payload[i] ^= key[i&3]
		}
	}
	return hdr[0] & 0x0f, payload, nil
}

// startRawEcho starts an echo server that answers every message with the same unmasked frame,
// answers pings, and ends on a close frame. It allocates nothing per message.
func startRawEcho(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go serveRawEcho(nc)
		}
	}()
	return ln.Addr().String()
}

func serveRawEcho(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 4096)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
	if _, err := io.WriteString(nc, resp); err != nil {
		return
	}
	var hdr [14]byte
	buf := make([]byte, 4+64<<10)
	for {
		op, p, err := readFrame(br, hdr[:], buf[4:])
		if err != nil {
			return
		}
		switch op {
		case 0x8:
			_, _ = nc.Write([]byte{0x88, 0})
			return
		case 0xA:
			continue
		case 0x9:
			op = 0xA
		}
		var out []byte
		if len(p) <= 125 {
			out = buf[2 : 4+len(p)]
			out[0], out[1] = 0x80|op, byte(len(p))
		} else {
			out = buf[:4+len(p)]
			out[0], out[1] = 0x80|op, 126
			binary.BigEndian.PutUint16(out[2:], uint16(len(p)))
		}
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}
