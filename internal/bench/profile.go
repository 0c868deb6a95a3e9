package bench

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A game profile (--profiles) models the load players create at a game's tick rate: every
// player sends --size-byte messages at a fixed rate, all the time, and the bench measures one
// window of it (--duration, after --warmup) per path per round.
//
// Names:
//   - echo<R>: R messages per second per player; the game server (echo mode) sends each one
//     back to its sender. echo20 and echo30 are the usual tick rates.
//   - room<K>, room<K>@<R>: rooms of K players at R messages per second per player (20 when
//     left out); the game server relays each message to the other K−1 players of the room (its
//     normal relay, not echo mode), one game server per room. room4 and room8.
//   - any of them with :<players>, e.g. room4:500: that many players instead of --connections
//     (so one run can hold profiles whose load differs, such as echo20 and room4 at the same
//     frames per second through the proxy).
//   - default: the bench's own phases (light, paced, saturated), as run without --profiles.
const (
	ProfileDefault = "default"

	profileEcho = "echo"
	profileRoom = "room"

	defaultRoomRate = 20 // messages per second per player of room<K> without @R
	maxRoomSize     = 64
	// maxGameServers bounds the game servers (processes) a room profile starts: 1,000 players
	// in rooms of 2.
	maxGameServers = 500
)

// Profile is one game profile, parsed from its name.
type Profile struct {
	Name     string  `json:"name"`
	Mode     string  `json:"mode"`                // "echo" or "broadcast"
	RoomSize int     `json:"room_size,omitempty"` // broadcast: players per room (and per game server)
	Rate     float64 `json:"rate"`                // messages per second per player
	Players  int     `json:"-"`                   // from :<players>, 0: --connections (the report gives the players run, ProfileReport.Players)
}

// Modes of a profile.
const (
	ModeEcho      = "echo"
	ModeBroadcast = "broadcast"
)

// ParseProfile parses a profile name (see the constants above); "default" is not a profile.
func ParseProfile(name string) (Profile, error) {
	bad := func(why string) (Profile, error) {
		return Profile{}, fmt.Errorf("profile %q: %s (want echo<rate> such as echo20, or room<size>[@<rate>] such as room4 or room8@30, either with :<players> if wanted, e.g. room4:500)", name, why)
	}
	kind, count, hasCount := strings.Cut(name, ":")
	players := 0
	if hasCount {
		n, err := strconv.Atoi(count)
		if err != nil || n < 1 || n > maxConnections {
			return bad(fmt.Sprintf("the players after : must be 1 to %d", maxConnections))
		}
		players = n
	}
	p, err := parseKind(kind)
	if err != nil {
		return bad(err.Error())
	}
	p.Name, p.Players = name, players
	return p, nil
}

// parseKind parses a profile name without its :<players>.
func parseKind(name string) (Profile, error) {
	bad := func(why string) (Profile, error) { return Profile{}, errors.New(why) }
	rate := func(s string) (float64, bool) {
		r, err := strconv.ParseFloat(s, 64)
		return r, err == nil && r > 0 && r <= 1000
	}
	switch {
	case strings.HasPrefix(name, profileEcho):
		r, ok := rate(strings.TrimPrefix(name, profileEcho))
		if !ok {
			return bad("the rate must be a number of messages per second, above 0 and at most 1000")
		}
		return Profile{Name: name, Mode: ModeEcho, Rate: r}, nil
	case strings.HasPrefix(name, profileRoom):
		size, at, hasRate := strings.Cut(strings.TrimPrefix(name, profileRoom), "@")
		k, err := strconv.Atoi(size)
		if err != nil || k < 2 || k > maxRoomSize {
			return bad(fmt.Sprintf("the room size must be 2 to %d players", maxRoomSize))
		}
		p := Profile{Name: name, Mode: ModeBroadcast, RoomSize: k, Rate: defaultRoomRate}
		if hasRate {
			r, ok := rate(at)
			if !ok {
				return bad("the rate after @ must be a number of messages per second, above 0 and at most 1000")
			}
			p.Rate = r
		}
		return p, nil
	}
	return bad("unknown kind")
}

// receivers is how many players get each message: the sender (echo) or the rest of its room.
func (p Profile) receivers() int {
	if p.Mode == ModeBroadcast {
		return p.RoomSize - 1
	}
	return 1
}

// conns is the players the profile asks for: its own :<players>, else n (--connections).
func (p Profile) conns(n int) int {
	if p.Players > 0 {
		return p.Players
	}
	return n
}

// players is how many players the profile drives (n: --connections): whole rooms only.
func (p Profile) players(n int) int {
	n = p.conns(n)
	if p.Mode == ModeBroadcast {
		return n / p.RoomSize * p.RoomSize
	}
	return n
}

// servers is how many game servers (rooms) n players need.
func (p Profile) servers(n int) int {
	if p.Mode == ModeBroadcast {
		return p.players(n) / p.RoomSize
	}
	return echoServers(p.conns(n))
}

// describe is the profile in words, for the report.
func (p Profile) describe(n int) string {
	rate := strconv.FormatFloat(p.Rate, 'f', -1, 64)
	if p.Mode == ModeBroadcast {
		return fmt.Sprintf("%d players in %d rooms of %d × %s messages/s each; the game server relays each message to the other %d players of the room",
			p.players(n), p.servers(n), p.RoomSize, rate, p.RoomSize-1)
	}
	return fmt.Sprintf("%d players × %s messages/s each; the game server (echo mode) sends each message back to its sender", p.players(n), rate)
}

// echoServers is how many echo game servers n players are spread over.
func echoServers(n int) int { return (n + seatsPerRoom - 1) / seatsPerRoom }

// profileNames splits cfg.Profiles into whether the default phases run and the game profiles.
// Names are checked by Config.Validate.
func (c Config) profileNames() (runDefault bool, profiles []Profile) {
	if len(c.Profiles) == 0 {
		return true, nil
	}
	for _, name := range c.Profiles {
		if name == ProfileDefault {
			runDefault = true
			continue
		}
		if p, err := ParseProfile(name); err == nil {
			profiles = append(profiles, p)
		}
	}
	return runDefault, profiles
}

// ProfileReport is a game profile's results: every path of every round side by side, and the
// medians over the rounds. Figures comparing paths are taken within a round (the same Usher,
// nginx and game servers, minutes apart), then their median is reported.
type ProfileReport struct {
	Profile
	Players int              `json:"players"` // per path
	Servers int              `json:"game_servers"`
	Rounds  []ProfileRound   `json:"rounds"`
	Medians []ProfileFigures `json:"medians"` // per path, medians over the rounds
	// UsherVsNginx counts the rounds in which Usher matched nginx (issue 14's targets).
	UsherVsNginx *UsherVsNginx `json:"usher_vs_nginx,omitempty"`
	Runs         []PathRun     `json:"runs"` // everything measured, every path of every round
}

// ProfileRound is one round of a game profile: the paths in the order they ran.
type ProfileRound struct {
	Round int              `json:"round"` // from 0
	Paths []ProfileFigures `json:"paths"`
}

// ProfileFigures are one path's figures in one round of a game profile (or their medians).
// Latencies are in microseconds: a message's latency is measured at each player that receives
// it, from its send time.
type ProfileFigures struct {
	Path     string  `json:"path"`
	Sent     uint64  `json:"sent"`
	Expected uint64  `json:"expected"` // deliveries owed: sent × receivers per message
	Received uint64  `json:"received"`
	Lost     uint64  `json:"lost"`
	PerSec   float64 `json:"received_per_second"`
	P50US    float64 `json:"p50_us"`
	P99US    float64 `json:"p99_us"`
	P999US   float64 `json:"p999_us"`
	MaxUS    float64 `json:"max_us"`
	// Added*: this path's latency minus direct's in the same round (what the proxy adds).
	AddedP50US  *float64 `json:"added_p50_us,omitempty"`
	AddedP99US  *float64 `json:"added_p99_us,omitempty"`
	AddedP999US *float64 `json:"added_p999_us,omitempty"`
	// VsNginx* (usher only): Usher's added latency minus nginx's in the same round, which is
	// Usher's latency minus nginx's; ≤ 0 means Usher added no more than nginx.
	VsNginxP50US  *float64 `json:"added_vs_nginx_p50_us,omitempty"`
	VsNginxP99US  *float64 `json:"added_vs_nginx_p99_us,omitempty"`
	VsNginxP999US *float64 `json:"added_vs_nginx_p999_us,omitempty"`
	// FramesPerCPUSecond is frames relayed per CPU-second of the hop (see LoadResult).
	FramesPerCPUSecond float64  `json:"frames_per_cpu_second"`
	FramesVsDirect     *float64 `json:"frames_per_cpu_second_vs_direct,omitempty"`
	FramesVsNginx      *float64 `json:"frames_per_cpu_second_vs_nginx,omitempty"` // usher only
	HopCores           float64  `json:"hop_cores"`                                // the hop's CPU over the window, in cores
	GeneratorCores     float64  `json:"generator_cores"`
	AllocsPerFrame     *float64 `json:"allocs_per_frame,omitempty"` // usher only
	Unexpected         uint64   `json:"unexpected_closes"`
	Misrouted          uint64   `json:"misrouted"`
	Failures           int      `json:"failed_connections"`
	Problems           []string `json:"problems,omitempty"` // per round only
}

// UsherVsNginx counts, over the rounds that measured both, those in which Usher's added
// latency was at most nginx's (p50, p99) and its frames per CPU-second at least 1.1× nginx's.
type UsherVsNginx struct {
	Rounds        int `json:"rounds"`
	P50AtMost     int `json:"p50_at_most_nginx"`
	P99AtMost     int `json:"p99_at_most_nginx"`
	FramesAtLeast int `json:"frames_at_least_1_1x_nginx"`
}

// framesTarget is issue 14's efficiency target: frames per CPU-second ≥ 1.1× nginx's.
const framesTarget = 1.1

// summarizeProfile arranges a profile's runs by round and takes the comparisons and medians.
func summarizeProfile(p Profile, connections int, paths []string, runs []PathRun) ProfileReport {
	rep := ProfileReport{Profile: p, Players: p.players(connections), Servers: p.servers(connections), Runs: runs}
	byRound := map[int][]*PathRun{}
	var rounds []int
	for i := range runs {
		r := &runs[i]
		if r.Game == nil {
			continue
		}
		if _, ok := byRound[r.Round]; !ok {
			rounds = append(rounds, r.Round)
		}
		byRound[r.Round] = append(byRound[r.Round], r)
	}
	slices.Sort(rounds)
	var vs UsherVsNginx
	perPath := map[string][]ProfileFigures{}
	for _, round := range rounds {
		rs := byRound[round]
		get := func(path string) *PathRun {
			for _, r := range rs {
				if r.Path == path {
					return r
				}
			}
			return nil
		}
		pr := ProfileRound{Round: round}
		for _, r := range rs {
			f := figures(r, get(PathDirect), get(PathNginx))
			pr.Paths = append(pr.Paths, f)
			perPath[r.Path] = append(perPath[r.Path], f)
			if r.Path == PathUsher && f.VsNginxP50US != nil && f.FramesVsNginx != nil {
				vs.Rounds++
				vs.P50AtMost += boolInt(*f.VsNginxP50US <= 0)
				vs.P99AtMost += boolInt(*f.VsNginxP99US <= 0)
				vs.FramesAtLeast += boolInt(*f.FramesVsNginx >= framesTarget)
			}
		}
		rep.Rounds = append(rep.Rounds, pr)
	}
	for _, path := range paths {
		if fs := perPath[path]; len(fs) > 0 {
			rep.Medians = append(rep.Medians, medianFigures(path, fs))
		}
	}
	if vs.Rounds > 0 {
		rep.UsherVsNginx = &vs
	}
	return rep
}

// figures are r's figures, compared with direct's and nginx's runs of the same round (nil when
// that path did not run).
func figures(r, direct, nginx *PathRun) ProfileFigures {
	g := r.Game
	f := ProfileFigures{
		Path: r.Path, Sent: g.Sent, Expected: g.Expected, Received: g.Received, Lost: g.Lost, PerSec: round3(g.RoundTripsPerSecond),
		P50US: g.Latency.P50, P99US: g.Latency.P99, P999US: g.Latency.P999, MaxUS: g.Latency.Max,
		FramesPerCPUSecond: round3(g.FramesPerCPUSecond), AllocsPerFrame: g.AllocsPerFrame,
		Unexpected: r.Unexpected, Misrouted: r.Misrouted, Failures: r.Connect.Count - r.Connect.OK, Problems: r.Problems,
	}
	if g.WindowSeconds > 0 {
		f.HopCores = round3(g.HopCPUSeconds / g.WindowSeconds)
		f.GeneratorCores = round3(g.GeneratorCPUSeconds / g.WindowSeconds)
	}
	diff := func(a, b float64) *float64 { d := round3(a - b); return &d }
	ratio := func(o *PathRun) *float64 {
		if o.Game.FramesPerCPUSecond == 0 {
			return nil
		}
		v := round3(g.FramesPerCPUSecond / o.Game.FramesPerCPUSecond)
		return &v
	}
	if direct != nil && direct.Game != nil && r.Path != PathDirect {
		d := direct.Game.Latency
		f.AddedP50US, f.AddedP99US, f.AddedP999US = diff(g.Latency.P50, d.P50), diff(g.Latency.P99, d.P99), diff(g.Latency.P999, d.P999)
		f.FramesVsDirect = ratio(direct)
	}
	if nginx != nil && nginx.Game != nil && r.Path == PathUsher {
		n := nginx.Game.Latency
		f.VsNginxP50US, f.VsNginxP99US, f.VsNginxP999US = diff(g.Latency.P50, n.P50), diff(g.Latency.P99, n.P99), diff(g.Latency.P999, n.P999)
		f.FramesVsNginx = ratio(nginx)
	}
	return f
}

// medianFigures is the median of each figure of fs over the rounds, but for the counts of
// trouble (lost, unexpected closes, misrouted, failed connections): their totals.
func medianFigures(path string, fs []ProfileFigures) ProfileFigures {
	col := func(get func(ProfileFigures) float64) float64 {
		v := make([]float64, len(fs))
		for i, f := range fs {
			v[i] = get(f)
		}
		return round3(median(v))
	}
	colPtr := func(get func(ProfileFigures) *float64) *float64 {
		var v []float64
		for _, f := range fs {
			if p := get(f); p != nil {
				v = append(v, *p)
			}
		}
		return medianPtr(v)
	}
	count := func(get func(ProfileFigures) uint64) uint64 {
		v := make([]float64, len(fs))
		for i, f := range fs {
			v[i] = float64(get(f))
		}
		return uint64(median(v))
	}
	m := ProfileFigures{
		Path:     path,
		Sent:     count(func(f ProfileFigures) uint64 { return f.Sent }),
		Expected: count(func(f ProfileFigures) uint64 { return f.Expected }),
		Received: count(func(f ProfileFigures) uint64 { return f.Received }),
		PerSec:   col(func(f ProfileFigures) float64 { return f.PerSec }),
		P50US:    col(func(f ProfileFigures) float64 { return f.P50US }),
		P99US:    col(func(f ProfileFigures) float64 { return f.P99US }),
		P999US:   col(func(f ProfileFigures) float64 { return f.P999US }),
		MaxUS:    col(func(f ProfileFigures) float64 { return f.MaxUS }),

		AddedP50US:    colPtr(func(f ProfileFigures) *float64 { return f.AddedP50US }),
		AddedP99US:    colPtr(func(f ProfileFigures) *float64 { return f.AddedP99US }),
		AddedP999US:   colPtr(func(f ProfileFigures) *float64 { return f.AddedP999US }),
		VsNginxP50US:  colPtr(func(f ProfileFigures) *float64 { return f.VsNginxP50US }),
		VsNginxP99US:  colPtr(func(f ProfileFigures) *float64 { return f.VsNginxP99US }),
		VsNginxP999US: colPtr(func(f ProfileFigures) *float64 { return f.VsNginxP999US }),

		FramesPerCPUSecond: col(func(f ProfileFigures) float64 { return f.FramesPerCPUSecond }),
		FramesVsDirect:     colPtr(func(f ProfileFigures) *float64 { return f.FramesVsDirect }),
		FramesVsNginx:      colPtr(func(f ProfileFigures) *float64 { return f.FramesVsNginx }),
		HopCores:           col(func(f ProfileFigures) float64 { return f.HopCores }),
		GeneratorCores:     col(func(f ProfileFigures) float64 { return f.GeneratorCores }),
		AllocsPerFrame:     colPtr(func(f ProfileFigures) *float64 { return f.AllocsPerFrame }),
	}
	for _, f := range fs { // counts of trouble are totals: any is worth seeing
		m.Lost += f.Lost
		m.Unexpected += f.Unexpected
		m.Misrouted += f.Misrouted
		m.Failures += f.Failures
	}
	return m
}
