class_name UsherServer
extends Node
## The dedicated-server half of Usher: for a Godot server started by Usher (locally by
## [code]usher dev[/code], in Kubernetes by Agones beside the gdsdk-bridge sidecar) with Usher's
## environment ([code]USHER_PORT[/code], [code]USHER_HOST[/code], [code]USHER_BRIDGE_URL[/code], ...).
##
## It opens the WebSocket server players reach through Usher's proxy, puts it in the tree as
## [code]multiplayer.multiplayer_peer[/code] (so RPCs work), and speaks the whole bridge protocol
## of Usher's docs/game-servers.md: [code]/ready[/code] once the game calls [method report_ready],
## heartbeats on a timer, each player connected and disconnected exactly once, the allocation long
## poll (room code and expected players), and [code]/shutdown[/code]. It keeps the contract's close
## codes: 4001 room full, 4002 replaced (the same player connected again), 1001 stopping.
## [codeblock]
## var usher := UsherServer.new()
## add_child(usher)
## usher.player_joined.connect(_on_player_joined)
## if usher.start() == OK:
##     usher.report_ready()
## [/codeblock]
## The names mirror Usher's Go package [code]contract[/code].

## Emitted once, when Usher gives this server a room. [param players] holds the player ids that
## hold a seat so far (more may join: see [member expected_players]).
signal allocated(room: String, players: PackedStringArray)
## Emitted when a player's connection is accepted (the bridge gave it a seat). [param peer_id] is
## the multiplayer peer id for RPCs.
signal player_joined(peer_id: int, player_id: String, player_name: String)
## Emitted when an accepted player's connection ends.
signal player_left(peer_id: int, player_id: String)
## Emitted when the server must stop (the bridge says Shutdown, or [method shutdown] was called),
## just before players are closed with 1001 and the process quits.
signal shutdown_requested()
## Emitted on every change of the allocation the bridge reports.
signal allocation_changed(allocation: Dictionary)

## Environment variables Usher starts a game server with (contract.Env* in Go).
const ENV_PORT := "USHER_PORT"
const ENV_HOST := "USHER_HOST"
const ENV_BRIDGE_URL := "USHER_BRIDGE_URL"
const ENV_GAME := "USHER_GAME"
const ENV_SERVER := "USHER_SERVER"
## Query parameters Usher's proxy dials the game server with (contract.Query*).
const QUERY_PLAYER := "usher_player"
const QUERY_NAME := "usher_name"
const QUERY_ROOM := "usher_room"
## Bridge protocol paths (contract.Path*).
const PATH_READY := "/ready"
const PATH_HEARTBEAT := "/heartbeat"
const PATH_CONNECTED := "/players/connected"
const PATH_DISCONNECTED := "/players/disconnected"
const PATH_SHUTDOWN := "/shutdown"
const PATH_ALLOCATION := "/allocation"
## Allocation states (contract.State*).
const STATE_STARTING := "Starting"
const STATE_READY := "Ready"
const STATE_ALLOCATED := "Allocated"
const STATE_SHUTDOWN := "Shutdown"
## Close codes of the contract.
const CLOSE_GOING_AWAY := 1001
const CLOSE_POLICY := 1008
const CLOSE_TRY_AGAIN := 1013
const CLOSE_ROOM_FULL := 4001
const CLOSE_REPLACED := 4002
## Usher's close code to a game server for a player whose connection broke (the seat is kept).
const CLOSE_LOST := 4004
## Usher's close code when a replica drains (the player reconnects elsewhere; the seat is kept).
const CLOSE_SERVICE_RESTART := 1012

## Seconds between heartbeats; the contract asks for at least one every 2 s.
@export_range(0.2, 2.0) var heartbeat_interval: float = 1.0
## Seconds an allocated room may stay without players before the server shuts down (0: never).
## A room nobody ever joins ends this way too.
@export var empty_timeout: float = 30.0
## Quit the process (exit code 0) after shutdown, as the contract asks. Turn off only in tests.
@export var quit_on_shutdown: bool = true

## The port players' WebSockets arrive on (USHER_PORT).
var port: int = 0
## The address to bind (USHER_HOST); empty means all interfaces.
var host: String = ""
## The bridge's base URL (USHER_BRIDGE_URL).
var bridge_url: String = ""
## The game id (USHER_GAME) and this server's name (USHER_SERVER).
var game: String = ""
var server_name: String = ""
## The room code, empty until allocated.
var room: String = ""
## Whether quick match may send players to this room.
var public: bool = false
## Seats in the room.
var max_players: int = 0
## Players holding a seat (reserved at join or connected), as the bridge last reported them.
var expected_players: PackedStringArray = PackedStringArray()
## The allocation as the bridge last reported it.
var allocation: Dictionary = {}
## The WebSocket server, once [method start] succeeded.
var peer: WebSocketMultiplayerPeer = null

var _peers: Dictionary = {} # peer id -> {"player", "name", "joined"}
var _player_peer: Dictionary = {} # player id -> the peer id that speaks for the player now
var _reported: Dictionary = {} # player ids reported connected and not yet disconnected
var _close_codes: Dictionary = {} # peer id -> the close code seen while its connection was closing
var _events: Array[Dictionary] = [] # player reports, sent one at a time, in order
var _sending_events: bool = false
var _heartbeat_timer: Timer = null
var _heartbeat_busy: bool = false
var _stopping: bool = false
var _shutting_down: bool = false # /shutdown sent (or being sent)
var _was_allocated: bool = false
var _empty_since_ms: int = 0


## Reads the environment and opens the WebSocket server. Returns OK, ERR_UNCONFIGURED (not
## started by Usher: an environment variable is missing) or the error of create_server.
func start() -> Error:
	var env := read_environment(OS.get_environment(ENV_PORT), OS.get_environment(ENV_HOST),
		OS.get_environment(ENV_BRIDGE_URL), OS.get_environment(ENV_GAME), OS.get_environment(ENV_SERVER))
	if env.has("error"):
		push_error("UsherServer: " + str(env["error"]))
		return ERR_UNCONFIGURED
	port = env["port"]
	host = env["host"]
	bridge_url = env["bridge_url"]
	game = env["game"]
	server_name = env["server"]
	peer = WebSocketMultiplayerPeer.new()
	var err := peer.create_server(port, host if host != "" else "*")
	if err != OK:
		push_error("UsherServer: cannot listen on %s:%d: %s" % [host, port, error_string(err)])
		peer = null
		return err
	peer.peer_connected.connect(_on_peer_connected)
	peer.peer_disconnected.connect(_on_peer_disconnected)
	multiplayer.multiplayer_peer = peer
	print("UsherServer: listening on %s:%d for game %s (%s)" % [host if host != "" else "*", port, game, server_name])
	return OK


## Checks Usher's environment: returns port, host, bridge_url, game and server, or "error".
static func read_environment(port_s: String, host_s: String, bridge: String, game_s: String, server_s: String) -> Dictionary:
	if not port_s.is_valid_int() or port_s.to_int() < 1 or port_s.to_int() > 65535:
		return {"error": "%s=%s: want a TCP port (is this server started by Usher?)" % [ENV_PORT, port_s]}
	if not (bridge.begins_with("http://") or bridge.begins_with("https://")):
		return {"error": "%s=%s: want http://host:port" % [ENV_BRIDGE_URL, bridge]}
	return {"port": port_s.to_int(), "host": host_s, "bridge_url": bridge.rstrip("/"), "game": game_s, "server": server_s}


## Reads the identity Usher's proxy put on a player's URL: "player", "name" and "room" (empty
## strings when missing). Godot's WebSocket server sees the URL, not the X-Usher-* headers.
static func parse_identity(requested_url: String) -> Dictionary:
	var out := {"player": "", "name": "", "room": ""}
	var q := requested_url.find("?")
	if q < 0:
		return out
	var query := requested_url.substr(q + 1)
	var fragment := query.find("#")
	if fragment >= 0:
		query = query.left(fragment)
	for pair in query.split("&", false):
		var eq := pair.find("=")
		var key := (pair if eq < 0 else pair.left(eq)).uri_decode()
		var value := "" if eq < 0 else pair.substr(eq + 1).replace("+", " ").uri_decode()
		match key:
			QUERY_PLAYER:
				out["player"] = value
			QUERY_NAME:
				out["name"] = value
			QUERY_ROOM:
				out["room"] = value
	return out


## Tells the bridge the game accepts players, retrying with backoff while the bridge is not
## reachable (it may start after the game), then starts heartbeats and the allocation long poll.
## Call it once the game is ready to take players.
func report_ready() -> void:
	var backoff := 0.05
	while not _stopping:
		var res := await _bridge(HTTPClient.METHOD_POST, PATH_READY, {})
		if res.status == 204:
			break
		if res.status == 409:
			push_error("UsherServer: the bridge refused /ready: %s" % res.get("message", ""))
			_stop()
			return
		await get_tree().create_timer(backoff).timeout
		backoff = minf(backoff * 2.0, 2.0)
	if _stopping:
		return
	_heartbeat_timer = Timer.new()
	_heartbeat_timer.wait_time = heartbeat_interval
	_heartbeat_timer.timeout.connect(_heartbeat)
	add_child(_heartbeat_timer)
	_heartbeat_timer.start()
	_heartbeat()
	_watch_allocation()


## Ends the room: tells the bridge, closes every player with 1001 and quits with code 0 (unless
## [member quit_on_shutdown] is off). Call it when the match is over.
func shutdown() -> void:
	if _stopping or _shutting_down:
		return
	_shutting_down = true
	await _bridge(HTTPClient.METHOD_POST, PATH_SHUTDOWN, {})
	_stop()


## The player id behind multiplayer peer [param peer_id], or "" if unknown.
func player_of(peer_id: int) -> String:
	var p: Dictionary = _peers.get(peer_id, {})
	return str(p.get("player", ""))


## The display name of the player behind [param peer_id], or "".
func name_of(peer_id: int) -> String:
	var p: Dictionary = _peers.get(peer_id, {})
	return str(p.get("name", ""))


## Multiplayer peer ids of the accepted players, in no particular order.
func player_peers() -> PackedInt32Array:
	var out := PackedInt32Array()
	for id: int in _peers:
		if _peers[id]["joined"]:
			out.append(id)
	return out


func _notification(what: int) -> void:
	if what == NOTIFICATION_WM_CLOSE_REQUEST or what == NOTIFICATION_PREDELETE:
		_close_players()


func _process(_delta: float) -> void:
	_watch_closing()
	if _stopping or _shutting_down or not _was_allocated or empty_timeout <= 0.0:
		return
	if player_peers().is_empty() and _pending_connects() == 0:
		if _empty_since_ms == 0:
			_empty_since_ms = Time.get_ticks_msec()
		elif Time.get_ticks_msec() - _empty_since_ms > int(empty_timeout * 1000.0):
			print("UsherServer: room %s empty for %.0f s: shutting down" % [room, empty_timeout])
			shutdown()
	else:
		_empty_since_ms = 0


func _pending_connects() -> int:
	var n := 0
	for e in _events:
		if e["kind"] == "connected":
			n += 1
	return n


func _on_peer_connected(id: int) -> void:
	var ws := peer.get_peer(id)
	var who := parse_identity(ws.get_requested_url() if ws != null else "")
	if who["player"] == "":
		if ws != null:
			ws.close(CLOSE_POLICY, "no player")
		return
	_peers[id] = {"player": who["player"], "name": who["name"], "joined": false}
	_queue({"kind": "connected", "id": id})


func _on_peer_disconnected(id: int) -> void:
	if not _peers.has(id):
		return
	var info: Dictionary = _peers[id]
	_peers.erase(id)
	var code: int = _close_codes.get(id, -1)
	_close_codes.erase(id)
	info["reason"] = disconnect_reason(code)
	_queue({"kind": "disconnected", "id": id, "info": info})


## The bridge's reason for a connection that ended with close [param code] (-1: unknown):
## [code]"lost"[/code] (the player may come back: Usher's 4004 connection lost, 1012 restart,
## 1006 or an unknown code — the seat is kept for the reconnect grace) or [code]"left"[/code]
## (frees the seat at once), as [code]contract.DisconnectReason[/code] in Go.
static func disconnect_reason(code: int) -> String:
	if code in [CLOSE_LOST, CLOSE_SERVICE_RESTART, 1006, -1]:
		return "lost"
	return "left"


## Remembers the close code of each connection that is closing, for its disconnect report
## (the multiplayer peer forgets a connection before it tells us it is gone).
func _watch_closing() -> void:
	if peer == null:
		return
	for id in _peers:
		var ws := peer.get_peer(id)
		if ws != null and ws.get_ready_state() != WebSocketPeer.STATE_OPEN and ws.get_close_code() != -1:
			_close_codes[id] = ws.get_close_code()


func _queue(event: Dictionary) -> void:
	_events.append(event)
	if not _sending_events:
		_send_events()


## Sends the queued player reports one at a time, so a player's connect and disconnect reach
## the bridge in order and each exactly once.
func _send_events() -> void:
	_sending_events = true
	while not _events.is_empty():
		var e: Dictionary = _events.pop_front()
		if e["kind"] == "connected":
			await _connect_player(e["id"])
		else:
			await _disconnect_player(e["id"], e["info"])
	_sending_events = false


func _connect_player(id: int) -> void:
	if not _peers.has(id):
		return # gone before its turn; its disconnect finds nothing to report
	var info: Dictionary = _peers[id]
	var player: String = info["player"]
	var older: int = _player_peer.get(player, 0)
	if older != 0 and older != id and _peers.has(older):
		_close_peer(older, CLOSE_REPLACED, "replaced")
	_player_peer[player] = id
	if not _reported.has(player):
		var res := await _bridge(HTTPClient.METHOD_POST, PATH_CONNECTED, {"player": player})
		if res.status != 204:
			if _player_peer.get(player, 0) == id:
				_player_peer.erase(player)
			match str(res.get("code", "")):
				"room_full":
					_close_peer(id, CLOSE_ROOM_FULL, "room full")
				"bad_state":
					_close_peer(id, CLOSE_POLICY, "not accepting players")
				_:
					_close_peer(id, CLOSE_TRY_AGAIN, "bridge unavailable")
			return
		_reported[player] = true
	if not _peers.has(id):
		# It left while being reported: its disconnect event is queued behind this one.
		return
	_peers[id]["joined"] = true
	player_joined.emit(id, player, str(info["name"]))


func _disconnect_player(id: int, info: Dictionary) -> void:
	var player: String = info["player"]
	if info["joined"]:
		player_left.emit(id, player)
	if _player_peer.get(player, 0) != id and _player_peer.has(player):
		return # a newer connection speaks for the player now
	_player_peer.erase(player)
	if _reported.has(player):
		_reported.erase(player)
		await _bridge(HTTPClient.METHOD_POST, PATH_DISCONNECTED, {"player": player, "reason": str(info.get("reason", "lost"))})


func _close_peer(id: int, code: int, reason: String) -> void:
	if peer == null:
		return
	var ws := peer.get_peer(id) if _peer_open(id) else null
	if ws != null:
		ws.close(code, reason)


func _peer_open(id: int) -> bool:
	return _peers.has(id)


func _heartbeat() -> void:
	if _heartbeat_busy or _stopping:
		return
	_heartbeat_busy = true
	await _bridge(HTTPClient.METHOD_POST, PATH_HEARTBEAT, {})
	_heartbeat_busy = false


## Follows the allocation: one GET, then long polls for the next version.
func _watch_allocation() -> void:
	var version := -1
	var backoff := 0.05
	while not _stopping:
		var path := PATH_ALLOCATION
		if version >= 0:
			path += "?after=%d&wait=30" % version
		var res := await _bridge(HTTPClient.METHOD_GET, path, {}, 40.0)
		if _stopping:
			return
		if res.status != 200:
			await get_tree().create_timer(backoff).timeout
			backoff = minf(backoff * 2.0, 2.0)
			continue
		backoff = 0.05
		version = int(res.get("version", 0))
		_set_allocation(res)


func _set_allocation(a: Dictionary) -> void:
	a.erase("status")
	allocation = a
	public = bool(a.get("public", false))
	max_players = int(a.get("max_players", 0))
	expected_players = PackedStringArray(a.get("players", []))
	allocation_changed.emit(a)
	var state := str(a.get("state", ""))
	if state == STATE_SHUTDOWN:
		_stop()
		return
	if state == STATE_ALLOCATED and not _was_allocated:
		room = str(a.get("room", ""))
		if room == "":
			print("UsherServer: allocated without a room (given up before anyone joined): shutting down")
			shutdown()
			return
		_was_allocated = true
		_empty_since_ms = Time.get_ticks_msec()
		allocated.emit(room, expected_players)


func _stop() -> void:
	if _stopping:
		return
	_stopping = true
	if _heartbeat_timer != null:
		_heartbeat_timer.stop()
	shutdown_requested.emit()
	_close_players()
	if quit_on_shutdown:
		# Give the close frames a moment to leave before the process ends.
		await get_tree().create_timer(0.2).timeout
		get_tree().quit(0)


func _close_players() -> void:
	if peer == null:
		return
	for id: int in _peers.keys():
		var ws := peer.get_peer(id)
		if ws != null:
			ws.close(CLOSE_GOING_AWAY, "server stopping")
	peer.poll()


## One bridge call: returns the JSON answer (if any) plus "status" (0 when no answer came) and,
## on errors, "code" and "message".
func _bridge(method: int, path: String, body: Dictionary, timeout: float = 5.0) -> Dictionary:
	var http := HTTPRequest.new()
	http.timeout = timeout
	add_child(http)
	var payload := "" if method == HTTPClient.METHOD_GET else JSON.stringify(body)
	var err := http.request(bridge_url + path, PackedStringArray(["Content-Type: application/json"]), method, payload)
	if err != OK:
		http.queue_free()
		return {"status": 0, "code": "network_error", "message": error_string(err)}
	var answer: Array = await http.request_completed
	http.queue_free()
	var status: int = answer[1]
	if answer[0] != HTTPRequest.RESULT_SUCCESS:
		status = 0
	var text := (answer[3] as PackedByteArray).get_string_from_utf8()
	var out := {}
	var data: Variant = JSON.parse_string(text) if text != "" else null
	if data is Dictionary:
		out = data
	if out.get("error") is Dictionary:
		out["code"] = str(out["error"].get("code", ""))
		out["message"] = str(out["error"].get("message", ""))
	out["status"] = status
	return out
