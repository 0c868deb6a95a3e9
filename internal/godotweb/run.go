package godotweb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/usher-gg/usher/internal/godotpack"
)

// DefaultTimeout bounds a run whose Options give none.
const DefaultTimeout = 90 * time.Second

// ErrScript is a GDScript error in a run's output (parse or runtime): the run stops at once,
// since after a parse error the engine hangs instead of exiting.
var ErrScript = errors.New("SCRIPT ERROR")

// ErrEngineCrash is the engine itself failing (a WebAssembly RuntimeError such as "table index
// is out of bounds"), as opposed to a GDScript error. This build of the engine has such a crash
// in its HTTP path that depends only on the heap's layout: the same project always crashes, and
// one file more or less in the pack does not (see RunTest).
var ErrEngineCrash = errors.New("the Godot web engine crashed")

// ErrNoChromium means no Chromium binary was found.
var ErrNoChromium = errors.New("chromium is not installed (apt-get install -y chromium)")

// FindChromium returns the path of the Chromium binary: $CHROMIUM, else chromium or
// chromium-browser on PATH.
func FindChromium() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// Browser is one headless Chromium that runs projects, one tab per run.
type Browser struct {
	engineDir string
	alloc     context.Context
	cancel    context.CancelFunc
	browser   context.Context
}

// NewBrowser starts Chromium (at chromium) for running projects on the engine in engineDir,
// which godotpack.CheckEngine must accept. Close it when done.
func NewBrowser(engineDir, chromium string) (*Browser, error) {
	if err := godotpack.CheckEngine(engineDir); err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.Flag("use-angle", "swiftshader"),
		chromedp.Flag("enable-unsafe-swiftshader", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		cancelBrowser()
		cancelAlloc()
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	return &Browser{engineDir: engineDir, alloc: alloc, browser: bctx, cancel: func() { cancelBrowser(); cancelAlloc() }}, nil
}

// Close stops Chromium.
func (b *Browser) Close() { b.cancel() }

// Options tune one run.
type Options struct {
	// Args are the engine's command line (OS.get_cmdline_args()); "--headless" is always first.
	// Use plain --key=value: the "++" separator is swallowed by this build.
	Args []string
	// Timeout bounds the run (DefaultTimeout if zero).
	Timeout time.Duration
	// OnLine sees each line the game prints, stdout and stderr, as it comes.
	OnLine func(line string)
	// Handler, if set, serves every path under /test/ on the page's own origin, so a test
	// page can talk back to its Go test (same origin: no CORS).
	Handler http.Handler
}

// Result is how a run ended.
type Result struct {
	ExitCode int      // the code given to get_tree().quit
	Output   []string // every line printed, in order
	Origin   string   // the page's origin, http://127.0.0.1:port
}

// Run packs p, serves it with the engine on 127.0.0.1 and runs it in a new tab until the game
// quits (Result.ExitCode), a GDScript error is printed (ErrScript), the engine fails to start,
// or the timeout passes. The Result holds the output in every case.
func (b *Browser) Run(ctx context.Context, p godotpack.Project, o Options) (Result, error) {
	var pck bytes.Buffer
	if err := p.Pack(&pck); err != nil {
		return Result{}, err
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, fmt.Errorf("serve the page: %w", err)
	}
	mux := http.NewServeMux()
	for _, f := range godotpack.EngineFiles {
		name := filepath.Join(b.engineDir, f)
		mux.HandleFunc("GET /"+f, func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, name) })
	}
	mux.HandleFunc("GET /game.pck", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(pck.Bytes())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	})
	if o.Handler != nil {
		mux.Handle("/test/", o.Handler)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	res := Result{Origin: "http://" + ln.Addr().String()}

	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	tab, cancelTab := chromedp.NewContext(b.browser)
	defer cancelTab()
	stopTab := context.AfterFunc(ctx, cancelTab)
	defer stopTab()

	messages := chromedp.Console(tab) // subscribed now: nothing printed is missed
	args, err := json.Marshal(append([]string{"--headless"}, o.Args...))
	if err != nil {
		return res, err
	}
	if err := chromedp.Do(tab, chromedp.Navigate(res.Origin+"/")); err != nil {
		return res, fmt.Errorf("open the page: %w", err)
	}
	if _, err := chromedp.Run(tab, chromedp.Evaluate[any]("start("+string(args)+")")); err != nil {
		return res, fmt.Errorf("start the engine: %w", err)
	}
	for m, err := range messages {
		if err != nil {
			if ctx.Err() != nil {
				return res, fmt.Errorf("godot run: no exit within %s: %w", o.Timeout, ctx.Err())
			}
			return res, fmt.Errorf("godot run: %w", err)
		}
		kind, msg, _ := strings.Cut(consoleText(m), " ")
		switch kind {
		case "[out]", "[err]":
			for _, line := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
				res.Output = append(res.Output, line)
				if o.OnLine != nil {
					o.OnLine(line)
				}
				if strings.Contains(line, "SCRIPT ERROR") {
					return res, fmt.Errorf("%w: %s", ErrScript, line)
				}
			}
		case "[exit]":
			res.ExitCode, err = strconv.Atoi(msg)
			return res, err
		case "[fail]":
			if strings.HasPrefix(msg, "RuntimeError") {
				return res, fmt.Errorf("%w: %s", ErrEngineCrash, msg)
			}
			return res, fmt.Errorf("godot web engine: %s", msg)
		}
		if m.IsException() {
			return res, fmt.Errorf("godot web engine: page exception: %s%s", m.Text, stack(m))
		}
	}
	return res, fmt.Errorf("godot run: the page went away")
}

// stack renders the first frames of a console message's stack trace, for a crash report.
func stack(m chromedp.ConsoleMessage) string {
	if m.Stack == nil {
		return ""
	}
	var b strings.Builder
	for i, f := range m.Stack.CallFrames {
		if i == 12 {
			break
		}
		fmt.Fprintf(&b, "\n\tat %s (%s:%d)", f.FunctionName, f.URL, f.LineNumber)
	}
	return b.String()
}

// consoleText is the string a console.log call printed.
func consoleText(m chromedp.ConsoleMessage) string {
	if len(m.Args) > 0 && len(m.Args[0].Value) > 0 {
		var s string
		if json.Unmarshal(m.Args[0].Value, &s) == nil {
			return s
		}
	}
	return m.Text
}

// page loads the engine and starts the packed game; what it prints goes to the console,
// which Run listens to.
const page = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>godot test</title></head>
<body><canvas id="canvas" width="320" height="240"></canvas>
<script src="index.js"></script>
<script>
function start(args) {
  const engine = new Engine({
    executable: "index", mainPack: "game.pck", args: args,
    canvas: document.getElementById("canvas"), canvasResizePolicy: 0,
    onPrint: (...a) => console.log("[out] " + a.join(" ")),
    onPrintError: (...a) => console.log("[err] " + a.join(" ")),
    onExit: (code) => console.log("[exit] " + code),
  });
  engine.startGame().catch((e) => console.log("[fail] " + e + (e && e.stack ? "\n" + e.stack : "")));
}
</script></body></html>
`
