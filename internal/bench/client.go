package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// dialJob is one WebSocket connection to open: the host:port and the request URI.
type dialJob struct {
	addr, uri string
}

// dialWS opens a WebSocket with Go's net package (timeouts and retries on signals for free),
// then hands back a duplicate of its non-blocking socket for the generator's epoll and closes
// Go's own descriptor. rest holds the bytes read past the handshake response.
func dialWS(ctx context.Context, src net.IP, job dialJob, timeout time.Duration) (fd int, rest []byte, err error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: src}}
	nc, err := d.DialContext(ctx, "tcp", job.addr)
	if err != nil {
		return -1, nil, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(timeout))
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	req := "GET " + job.uri + " HTTP/1.1\r\nHost: " + job.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return -1, nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return -1, nil, fmt.Errorf("handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		return -1, nil, fmt.Errorf("handshake: %d %s", resp.StatusCode, errorCode(body))
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return -1, nil, errors.New("handshake: wrong Sec-WebSocket-Accept")
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		rest = bytes.Clone(b)
	}
	_ = nc.SetDeadline(time.Time{})
	sc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		return -1, nil, err
	}
	var derr error
	cerr := sc.Control(func(s uintptr) {
		fd, derr = syscall.Dup(int(s))
		if derr == nil {
			syscall.CloseOnExec(fd)
		}
	})
	if err := errors.Join(cerr, derr); err != nil {
		return -1, nil, fmt.Errorf("dup: %w", err)
	}
	return fd, rest, nil
}

// errorCode extracts the machine code of an Usher error body, or a short snippet.
func errorCode(body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		return e.Error.Code
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// errorCounter counts errors by a bounded description.
type errorCounter struct {
	mu sync.Mutex
	m  map[string]int
}

func (e *errorCounter) add(err error) {
	msg := err.Error()
	// Keep the kind, drop addresses and ports that make every message unique.
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg[:i], "127.0.0.") {
		msg = msg[i+2:]
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]int{}
	}
	if len(e.m) < 20 {
		e.m[msg]++
	} else {
		e.m["other"]++
	}
}

func (e *errorCounter) snapshot() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.m) == 0 {
		return nil
	}
	out := make(map[string]int, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// parallel runs do(i) for i in [0, n) on at most workers goroutines and reports each call's
// duration into a histogram. It stops early when ctx is done.
func parallel(ctx context.Context, n, workers int, do func(i int) error) (ok int, hist *histogram, errs map[string]int, wall time.Duration) {
	var (
		next  atomic.Int64
		okN   atomic.Int64
		ec    errorCounter
		mu    sync.Mutex
		wg    sync.WaitGroup
		total histogram
	)
	start := time.Now()
	for range max(min(workers, n), 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h histogram
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					break
				}
				t0 := time.Now()
				if err := do(i); err != nil {
					ec.add(err)
					continue
				}
				h.record(int64(time.Since(t0)))
				okN.Add(1)
			}
			mu.Lock()
			total.merge(&h)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return int(okN.Load()), &total, ec.snapshot(), time.Since(start)
}

// apiClient calls Usher's public API.
type apiClient struct {
	base string // http://host:port
	hc   *http.Client
	tr   *http.Transport
}

func newAPIClient(addr string, conns int) *apiClient {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, never through a proxy
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &apiClient{base: "http://" + addr, tr: tr, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (c *apiClient) close() { c.tr.CloseIdleConnections() }

func (c *apiClient) post(ctx context.Context, path, token string, body any, out any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, errorCode(data))
	}
	return json.Unmarshal(data, out)
}

type player struct {
	token, id, ticket string
}

func (c *apiClient) token(ctx context.Context) (player, error) {
	var r struct {
		Token    string `json:"token"`
		PlayerID string `json:"player_id"`
	}
	if err := c.post(ctx, "/request_token", "", map[string]string{}, &r); err != nil {
		return player{}, err
	}
	return player{token: r.Token, id: r.PlayerID}, nil
}

// join joins room (or creates a room of game when room is ""), returning the ticket and room.
func (c *apiClient) join(ctx context.Context, token, game, room string) (ticket, code string, err error) {
	body := map[string]string{"game": game}
	if room != "" {
		body["room"] = room
	}
	var r struct {
		Room   string `json:"room"`
		Ticket string `json:"ticket"`
	}
	if err := c.post(ctx, "/join", token, body, &r); err != nil {
		return "", "", err
	}
	return r.Ticket, r.Room, nil
}

// scrape reads the admin listener's /metrics and returns the samples named in want (the
// first sample of each name; sums are not needed here).
func scrape(ctx context.Context, admin string, want ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		for _, w := range want {
			if name == w {
				if _, seen := out[w]; !seen {
					var f float64
					if _, err := fmt.Sscan(val, &f); err == nil {
						out[w] = f
					}
				}
			}
		}
	}
	return out, sc.Err()
}

// sortedKeys returns m's keys in order (for stable reports).
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
