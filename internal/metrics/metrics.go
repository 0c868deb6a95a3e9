// Package metrics defines Usher's Prometheus metrics on a registry the caller owns.
//
// Labels are bounded: route templates, game ids, result codes and reasons — never player,
// room, server or ticket ids.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every metric Usher exports. Create it once with New and pass the fields
// (or the whole struct) to the parts that record them.
type Metrics struct {
	// HTTP
	HTTPRequests *prometheus.CounterVec   // route, method, code
	HTTPDuration *prometheus.HistogramVec // route
	RateLimited  *prometheus.CounterVec   // route, key ("ip" or "player")

	// Tokens and joins
	TokensIssued      prometheus.Counter
	Joins             *prometheus.CounterVec   // game, mode (create|code|quick), result (ok or an error code)
	AllocationSeconds *prometheus.HistogramVec // game, result

	// Tickets
	TicketsIssued   prometheus.Counter
	TicketsRedeemed *prometheus.CounterVec // result (ok|invalid)

	// Proxy
	Connects        *prometheus.CounterVec // result (ok, ticket_invalid, origin_forbidden, dial_failed, upgrade_failed)
	ProxySessions   prometheus.Gauge
	ProxyMessages   *prometheus.CounterVec // direction (client_to_server|server_to_client)
	ProxyBytes      *prometheus.CounterVec // direction
	ProxyCloses     *prometheus.CounterVec // reason (client_closed, server_closed, server_gone, client_gone, message_too_big, policy, protocol, shutdown, ...)
	SessionDuration prometheus.Histogram

	// Fleet
	GameServers     *prometheus.GaugeVec   // game, state
	GameServerExits *prometheus.CounterVec // game, reason (shutdown, crashed, unhealthy, start_timeout, stopped)
	Rooms           *prometheus.GaugeVec   // game
	Players         *prometheus.GaugeVec   // game (connected players)
	// Allocations counts GameServerAllocations sent to Agones by game, op (create, join,
	// quick, release) and outcome (Allocated, UnAllocated, Contention, error); Seats the
	// players they carried (one allocation may seat several joiners of one room).
	Allocations       *prometheus.CounterVec // game, op, outcome
	AllocationPlayers *prometheus.CounterVec // game, op, result (seated, dropped, refused)
}

// New creates Usher's metrics and registers them, plus the Go and process collectors, on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_http_requests_total", Help: "HTTP requests on the public listener by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "usher_http_request_duration_seconds", Help: "Time to answer HTTP requests on the public listener, by route template.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_rate_limited_total", Help: "Requests refused by a rate limit, by route and limit key.",
		}, []string{"route", "key"}),
		TokensIssued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "usher_tokens_issued_total", Help: "Player tokens issued.",
		}),
		Joins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_joins_total", Help: "Join requests by game, mode and result (ok or an error code).",
		}, []string{"game", "mode", "result"}),
		AllocationSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "usher_allocation_seconds", Help: "Time the fleet backend took to find or allocate a game server, by game and result.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"game", "result"}),
		Allocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_agones_allocations_total", Help: "GameServerAllocations sent to Agones, by game, operation (create, join, quick, release) and outcome (Allocated, UnAllocated, Contention, error).",
		}, []string{"game", "op", "outcome"}),
		AllocationPlayers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_agones_allocation_players_total", Help: "Players carried by GameServerAllocations, by game, operation and result (seated; dropped past the list's capacity; refused with the whole allocation).",
		}, []string{"game", "op", "result"}),
		TicketsIssued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "usher_tickets_issued_total", Help: "Connection tickets issued.",
		}),
		TicketsRedeemed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_tickets_redeemed_total", Help: "Ticket redemptions by result (ok or invalid).",
		}, []string{"result"}),
		Connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_connects_total", Help: "WebSocket connect attempts on /connect by result.",
		}, []string{"result"}),
		ProxySessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "usher_proxy_sessions", Help: "Proxied WebSocket sessions open now.",
		}),
		ProxyMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_proxy_messages_total", Help: "WebSocket messages relayed, by direction.",
		}, []string{"direction"}),
		ProxyBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_proxy_bytes_total", Help: "WebSocket payload bytes relayed, by direction.",
		}, []string{"direction"}),
		ProxyCloses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_proxy_closes_total", Help: "Proxied sessions ended, by reason.",
		}, []string{"reason"}),
		SessionDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "usher_proxy_session_seconds", Help: "How long proxied sessions lasted.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9), // 1s … ~18h
		}),
		GameServers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "usher_gameservers", Help: "Game servers known to the fleet backend, by game and state.",
		}, []string{"game", "state"}),
		GameServerExits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_gameserver_exits_total", Help: "Game servers that ended, by game and reason.",
		}, []string{"game", "reason"}),
		Rooms: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "usher_rooms", Help: "Live rooms (allocated game servers), by game.",
		}, []string{"game"}),
		Players: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "usher_players", Help: "Players connected to game servers, by game.",
		}, []string{"game"}),
	}
	reg.MustRegister(
		m.HTTPRequests, m.HTTPDuration, m.RateLimited,
		m.TokensIssued, m.Joins, m.AllocationSeconds,
		m.TicketsIssued, m.TicketsRedeemed,
		m.Connects, m.ProxySessions, m.ProxyMessages, m.ProxyBytes, m.ProxyCloses, m.SessionDuration,
		m.GameServers, m.GameServerExits, m.Rooms, m.Players, m.Allocations, m.AllocationPlayers,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}
