package godotweb

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/chromedp/chromedp"
)

// Eval runs the JavaScript expression js in a new tab on an empty page served from
// 127.0.0.1 (a real origin, so fetch and WebSocket behave as on a web page, CORS included),
// waits for it if it is a promise, and returns its value as a string. Tests of the browser
// snippets in docs/clients.md use it.
func (b *Browser) Eval(ctx context.Context, js string, timeout time.Duration) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("serve the page: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!DOCTYPE html><title>eval</title>"))
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tab, cancelTab := chromedp.NewContext(b.browser)
	defer cancelTab()
	stop := context.AfterFunc(ctx, cancelTab)
	defer stop()
	if err := chromedp.Do(tab, chromedp.Navigate("http://"+ln.Addr().String()+"/")); err != nil {
		return "", fmt.Errorf("open the page: %w", err)
	}
	v, err := chromedp.Run(tab, chromedp.Evaluate[string]("Promise.resolve("+js+").then(String)", chromedp.EvalAwaitPromise))
	if err != nil && ctx.Err() != nil {
		return "", fmt.Errorf("eval: no answer within %s", timeout)
	}
	return v, err
}
