// Package httpapi is Usher's public HTTP API on Fiber: tokens, joins, the WebSocket connect,
// the games list and health. Every error answer is {"error": {"code", "message"}} (errors.go).
package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/usher-gg/usher/internal/auth"
	"github.com/usher-gg/usher/internal/clientip"
	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/metrics"
	"github.com/usher-gg/usher/internal/origin"
	"github.com/usher-gg/usher/internal/portal"
	"github.com/usher-gg/usher/internal/proxy"
	"github.com/usher-gg/usher/internal/ticket"
)

// Limits of the public listener. Fiber's defaults are unlimited timeouts: set them all.
const (
	readTimeout  = 10 * time.Second // whole request, headers included: slowloris ends here
	writeTimeout = 10 * time.Second
	idleTimeout  = 60 * time.Second
	bodyLimit    = 16 << 10
	headerLimit  = 16 << 10 // fasthttp's read buffer: the largest request head accepted
)

// Config holds the API's knobs.
type Config struct {
	TokenRate int // per minute per client IP on /request_token
	JoinRate  int // per minute per client IP, and per player, on /join
	// CreateRate is how many rooms a client IP may create per minute: /join requests that
	// ask for a new room (neither "room" nor "quick"). 0 means no such limit.
	CreateRate int
	// Portal, when set, is served on GET / and its files (usher dev): the pages players open.
	Portal map[string]portal.File
}

// Deps are the parts the API drives.
type Deps struct {
	Tokens   *auth.Tokens
	Match    *match.Service
	Tickets  ticket.Store
	Proxy    *proxy.Proxy
	Origins  *origin.Policy
	ClientIP *clientip.Resolver
	Metrics  *metrics.Metrics
	Log      *slog.Logger
	// Ready reports whether Usher can serve joins: "" when ready, else why not (the
	// GameServer watch has not synced, Redis does not answer). nil means always ready.
	Ready func(ctx context.Context) string
	// Limiter, when set, keeps the rate-limit counters every replica shares (Redis); nil
	// keeps them in this process (Fiber's limiter).
	Limiter Limiter
}

// Limiter counts requests per key in a sliding window shared by every replica, with the
// semantics of Fiber's limiter.SlidingWindow. Hit counts one request and returns how many
// remain (negative: refuse it) and how long until the current window ends.
type Limiter interface {
	Hit(ctx context.Context, key string, max int, window time.Duration) (remaining int, reset time.Duration, err error)
}

// Server is the public API.
type Server struct {
	Deps
	cfg      Config
	app      *fiber.App
	draining atomic.Bool
}

// New builds the API and its routes.
func New(cfg Config, d Deps) *Server {
	s := &Server{Deps: d, cfg: cfg}
	s.app = fiber.New(fiber.Config{
		AppName:               "usher",
		DisableStartupMessage: true,
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           idleTimeout,
		BodyLimit:             bodyLimit,
		ReadBufferSize:        headerLimit,
		ErrorHandler:          s.handleError,
		Network:               fiber.NetworkTCP,
	})
	// Proxied sessions own their hijacked connections; fasthttp need not keep its request
	// state for them (about 8 KB per player, see internal/proxy).
	s.app.Server().KeepHijackedConns = true
	s.routes()
	return s
}

// App returns the Fiber app, for Listener and app.Test.
func (s *Server) App() *fiber.App { return s.app }

// SetDraining makes /readyz fail, so load balancers stop sending new players here.
func (s *Server) SetDraining() { s.draining.Store(true) }

func (s *Server) routes() {
	a := s.app
	a.Use(requestid.New(requestid.Config{Header: "X-Request-ID"}), s.observe)
	api := cors.New(cors.Config{
		AllowOriginsFunc: s.Origins.Allowed,
		AllowMethods:     "GET,POST,OPTIONS",
		AllowHeaders:     "Authorization,Content-Type",
		ExposeHeaders:    "Retry-After,X-Request-ID", // so browser clients can honour Retry-After
		MaxAge:           600,
	})

	a.Get("/healthz", s.healthz)
	a.Get("/readyz", s.readyz)
	a.Get("/games", api, s.games)
	a.Post("/request_token", api, s.limit("request_token", "ip", s.cfg.TokenRate, s.ipKey), s.requestToken)
	a.Options("/request_token", api)
	a.Post("/join", api, s.limit("join", "ip", s.cfg.JoinRate, s.ipKey), s.authenticate,
		s.limit("join", "player", s.cfg.JoinRate, playerKey), s.limitCreates(), s.join)
	a.Options("/join", api)
	a.Get("/connect", s.connect)
	if s.cfg.Portal != nil {
		a.Get("/*", s.portal)
	}
}

// portal serves the embedded pages (usher dev): GET / is the portal's index.html.
func (s *Server) portal(c *fiber.Ctx) error {
	name := strings.TrimPrefix(c.Path(), "/")
	if name == "" || strings.HasSuffix(name, "/") {
		name += "index.html"
	}
	f, ok := s.cfg.Portal[name]
	if !ok {
		return c.Next() // 404 not_found
	}
	c.Locals(routeKey, "/portal")
	c.Set(fiber.HeaderContentType, f.ContentType)
	csp := portal.CSP
	if f.CSP != "" {
		csp = f.CSP
	}
	c.Set("Content-Security-Policy", csp)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.Send(f.Body)
}

// routeKey is the Locals key a handler sets to name its route for metrics and logs.
const routeKey = "usher.route"

// limit is Fiber's sliding-window limiter (or the shared Limiter, same window), answering
// with our error shape and counting refusals.
func (s *Server) limit(route, key string, perMinute int, keyFn func(*fiber.Ctx) string) fiber.Handler {
	refused := s.Metrics.RateLimited.WithLabelValues(route, key)
	if s.Limiter != nil {
		return s.sharedLimit(route, perMinute, keyFn, refused)
	}
	return limiter.New(limiter.Config{
		Max:               perMinute,
		Expiration:        time.Minute,
		KeyGenerator:      keyFn,
		LimiterMiddleware: limiter.SlidingWindow{},
		LimitReached: func(c *fiber.Ctx) error {
			refused.Inc()
			retry, _ := strconv.Atoi(string(c.Response().Header.Peek(fiber.HeaderRetryAfter)))
			return &Error{Status: fiber.StatusTooManyRequests, Code: CodeRateLimited,
				Message: "too many requests; slow down", RetryAfter: time.Duration(max(retry, 1)) * time.Second}
		},
	})
}

// sharedLimit is limit on the shared Limiter: the same window, headers and answers as Fiber's
// limiter, the count kept where every replica adds to it. When the store cannot be reached
// the request is refused 503 unavailable (an unlimited door is worse than a closed one).
func (s *Server) sharedLimit(route string, perMinute int, keyFn func(*fiber.Ctx) string, refused prometheus.Counter) fiber.Handler {
	limitHdr := strconv.Itoa(perMinute)
	return func(c *fiber.Ctx) error {
		// The route keeps counters of different limits on one key apart (join and join_create).
		remaining, reset, err := s.Limiter.Hit(c.UserContext(), route+"|"+keyFn(c), perMinute, time.Minute)
		if err != nil {
			return fmt.Errorf("rate limit: %w", err)
		}
		secs := strconv.Itoa(int(reset / time.Second))
		if remaining < 0 {
			refused.Inc()
			return &Error{Status: fiber.StatusTooManyRequests, Code: CodeRateLimited,
				Message: "too many requests; slow down", RetryAfter: max(reset, time.Second)}
		}
		c.Set("X-RateLimit-Limit", limitHdr)
		c.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		c.Set("X-RateLimit-Reset", secs)
		return c.Next()
	}
}

// limitCreates limits room creation per client IP (CreateRate), on its own counter: the
// joins that ask for a new room. A create takes a whole game server, a join by code one
// seat, so creates get the smaller budget.
func (s *Server) limitCreates() fiber.Handler {
	if s.cfg.CreateRate <= 0 {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	limit := s.limit("join_create", "ip", s.cfg.CreateRate, s.ipKey)
	return func(c *fiber.Ctx) error {
		if !createsRoom(c.Body()) {
			return c.Next()
		}
		return limit(c)
	}
}

// createsRoom reports whether a /join body asks for a new room. A body that does not
// decode counts as none: the join handler refuses it.
func createsRoom(body []byte) bool {
	var b struct {
		Room  json.RawMessage `json:"room"`
		Quick json.RawMessage `json:"quick"`
	}
	if json.Unmarshal(body, &b) != nil {
		return false
	}
	return b.Room == nil && (b.Quick == nil || string(b.Quick) == "false")
}

// clientAddr is the client's address: the socket peer, or what a trusted proxy says.
func (s *Server) clientAddr(c *fiber.Ctx) netip.Addr {
	var remote netip.Addr
	if ta, ok := c.Context().RemoteAddr().(*net.TCPAddr); ok {
		remote = ta.AddrPort().Addr()
	}
	// Only the header the operator named (--client-ip-header) is read, and only from a trusted peer.
	return s.ClientIP.ClientIP(remote, func(name string) []string {
		var lines []string
		c.Request().Header.VisitAll(func(k, v []byte) {
			if strings.EqualFold(string(k), name) {
				lines = append(lines, string(v))
			}
		})
		return lines
	})
}

func (s *Server) ipKey(c *fiber.Ctx) string { return "ip:" + clientip.Key(s.clientAddr(c)) }

func playerKey(c *fiber.Ctx) string {
	cl, _ := c.Locals(claimsKey).(auth.Claims)
	return "player:" + cl.Player
}

// routeLabel bounds the route label of metrics and logs. It returns constants: Fiber's
// c.Path() aliases request memory that is reused after the handler returns.
func routeLabel(c *fiber.Ctx) string {
	if r, ok := c.Locals(routeKey).(string); ok {
		return r
	}
	switch c.Path() {
	case "/healthz":
		return "/healthz"
	case "/readyz":
		return "/readyz"
	case "/games":
		return "/games"
	case "/request_token":
		return "/request_token"
	case "/join":
		return "/join"
	case "/connect":
		return "/connect"
	}
	return "other"
}

// methodLabel bounds the method label, with constants for the same reason.
func methodLabel(c *fiber.Ctx) string {
	switch c.Method() {
	case fiber.MethodGet:
		return fiber.MethodGet
	case fiber.MethodPost:
		return fiber.MethodPost
	case fiber.MethodOptions:
		return fiber.MethodOptions
	case fiber.MethodHead:
		return fiber.MethodHead
	}
	return "other"
}

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals("requestid").(string)
	return id
}

// observe records metrics and a log line for every request. It never logs query strings
// (a ticket travels in one).
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := s.app.ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	route := routeLabel(c)
	status := c.Response().StatusCode()
	elapsed := time.Since(start)
	s.Metrics.HTTPRequests.WithLabelValues(route, methodLabel(c), strconv.Itoa(status)).Inc()
	s.Metrics.HTTPDuration.WithLabelValues(route).Observe(elapsed.Seconds())
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelWarn
	}
	s.Log.LogAttrs(c.UserContext(), level, "request",
		slog.String("request_id", requestID(c)), slog.String("method", methodLabel(c)), slog.String("route", route),
		slog.Int("status", status), slog.Duration("took", elapsed))
	return nil
}
