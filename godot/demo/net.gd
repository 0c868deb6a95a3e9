extends Node
## The demo's network autoload (/root/Net on every peer, so its RPCs line up). On a dedicated
## server (started with --server) it runs an UsherServer and the game rules; on a player's
## machine it runs an UsherClient and keeps what the server last said.
##
## State reaches the players only by server→client RPCs (lobby_updated, round_started, ...),
## never by synchronised variables, which break under latency while scenes change.

## The game id of the demo in Usher's catalog.
const GAME := "demo"
## Seconds a round lasts, and how long results stay up before the server ends the room.
const ROUND_SECONDS := 10.0
const RESULTS_SECONDS := 8.0

## Emitted on players' machines when the lobby changes.
signal lobby_changed()
## Emitted on players' machines when the round starts, with its length in seconds.
signal round_began(seconds: float)
## Emitted on players' machines when scores change.
signal scores_changed()
## Emitted on players' machines when the round is over.
signal round_finished(results: Array)
## Emitted on players' machines when the connection to the game ends for good.
signal disconnected(code: int, reason: String)

## The player-side client, null on the server.
var client: UsherClient = null
## The server side, null on players' machines.
var server: UsherServer = null
## The room code, the players in the lobby ([{"id": peer id, "name": ...}]) and the host's peer.
var room: String = ""
var players: Array = []
var host_id: int = 0
## Scores by peer id, during and after a round.
var scores: Dictionary = {}
## "lobby", "round" or "results".
var phase: String = "lobby"
## The last round's results ({"name", "score"}, best first).
var results: Array = []

var _round_left: float = 0.0


func _ready() -> void:
	if is_server_run(OS.get_cmdline_args()) or is_server_run(OS.get_cmdline_user_args()):
		_start_server()
	else:
		client = UsherClient.new()
		client.closed.connect(func(code: int, reason: String) -> void: disconnected.emit(code, reason))
		add_child(client)


## True when [param args] ask for the dedicated server (--server).
static func is_server_run(args: PackedStringArray) -> bool:
	return args.has("--server")


## True on the peer that is this machine's host (the first player in the room).
func is_host() -> bool:
	return multiplayer.has_multiplayer_peer() and multiplayer.get_unique_id() == host_id


# ---- the server ----

func _start_server() -> void:
	server = UsherServer.new()
	add_child(server)
	server.allocated.connect(func(code: String, _p: PackedStringArray) -> void: room = code)
	server.player_joined.connect(_on_player_joined)
	server.player_left.connect(_on_player_left)
	if server.start() != OK:
		get_tree().quit(1)
		return
	server.report_ready()


func _on_player_joined(peer_id: int, _player_id: String, player_name: String) -> void:
	players.append({"id": peer_id, "name": player_name if player_name != "" else "Player %d" % peer_id})
	if host_id == 0:
		host_id = peer_id
	_broadcast_lobby()
	if phase != "lobby":
		round_started.rpc_id(peer_id, _round_left)


func _on_player_left(peer_id: int, _player_id: String) -> void:
	players = players.filter(func(p: Dictionary) -> bool: return p["id"] != peer_id)
	if host_id == peer_id:
		host_id = players[0]["id"] if not players.is_empty() else 0
	_broadcast_lobby()


func _broadcast_lobby() -> void:
	lobby_updated.rpc(room, players, host_id)


func _process(delta: float) -> void:
	if server == null or phase != "round":
		return
	_round_left -= delta
	if _round_left <= 0.0:
		_end_round()


func _end_round() -> void:
	phase = "results"
	results = []
	for p: Dictionary in players:
		results.append({"name": p["name"], "score": int(scores.get(p["id"], 0))})
	results.sort_custom(func(a: Dictionary, b: Dictionary) -> bool: return a["score"] > b["score"])
	round_ended.rpc(results)
	await get_tree().create_timer(RESULTS_SECONDS).timeout
	server.shutdown() # the room is over: Usher replaces this server with a fresh one


# ---- RPCs: players → server ----

## A player asks to start the round; only the host may.
@rpc("any_peer", "call_remote", "reliable")
func request_start() -> void:
	if server == null or phase != "lobby" or multiplayer.get_remote_sender_id() != host_id:
		return
	phase = "round"
	scores.clear()
	_round_left = ROUND_SECONDS
	round_started.rpc(ROUND_SECONDS)


## A player scores a point (the round is a race to tap the most).
@rpc("any_peer", "call_remote", "unreliable_ordered")
func tap() -> void:
	if server == null or phase != "round":
		return
	var id := multiplayer.get_remote_sender_id()
	scores[id] = int(scores.get(id, 0)) + 1
	scores_updated.rpc(scores)


# ---- RPCs: server → players ----

## The lobby: room code, players and the host.
@rpc("authority", "call_remote", "reliable")
func lobby_updated(code: String, list: Array, host: int) -> void:
	room = code
	players = list
	host_id = host
	lobby_changed.emit()


## The round starts now and lasts [param seconds].
@rpc("authority", "call_remote", "reliable")
func round_started(seconds: float) -> void:
	phase = "round"
	scores.clear()
	round_began.emit(seconds)


## The scores so far.
@rpc("authority", "call_remote", "unreliable_ordered")
func scores_updated(by_peer: Dictionary) -> void:
	scores = by_peer
	scores_changed.emit()


## The round is over: [param results] are {"name", "score"}, best first.
@rpc("authority", "call_remote", "reliable")
func round_ended(final: Array) -> void:
	phase = "results"
	results = final
	round_finished.emit(final)
