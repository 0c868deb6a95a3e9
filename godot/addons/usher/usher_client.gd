class_name UsherClient
extends Node
## The client half of Usher: a player token, rooms (create, join by code, quick match) and the
## WebSocket to the room's game server, through Usher's proxy.
##
## Add it to the scene tree (it must be inside the tree: it sends HTTP requests and polls its
## socket), then await its coroutines. Each returns a [Dictionary]: on success the API's JSON
## fields plus [code]"ok": true[/code]; on failure [code]"ok": false[/code], [code]"code"[/code]
## (the API's error code, or [code]network_error[/code]), [code]"message"[/code],
## [code]"status"[/code] (the HTTP status, 0 when no answer came) and
## [code]"retry_after"[/code] (seconds, 0 if none).
## [codeblock]
## var usher := UsherClient.new()
## add_child(usher)
## await usher.request_token("Alice")
## var join := await usher.create_room("example")
## if join.ok:
##     multiplayer.multiplayer_peer = usher.connect_multiplayer(join)
## [/codeblock]
## The client keeps its token and asks for a new one when it is about to expire. It reconnects to
## the same room (a fresh [code]/join[/code] with the room code, then a new socket) when the
## connection closes with a code Usher documents as retryable ([constant RETRYABLE_CLOSE_CODES]).
## The API is described in Usher's docs/api.md; the names mirror its Go package [code]contract[/code].

## Emitted when the socket to the game server is open (for [method connect_multiplayer], once
## the game server's multiplayer handshake is done). [param join] is the join it connected with.
signal connected(join: Dictionary)
## Emitted when the socket closed for good: closed by this client, by a code that is not
## retryable, or after reconnecting failed. [param code] is the WebSocket close code (1006 or -1
## when the connection dropped without one).
signal closed(code: int, reason: String)
## Emitted when the socket closed with a retryable code and the client is about to join the same
## room again ([param attempt] counts from 1).
signal reconnecting(attempt: int, code: int, reason: String)
## Emitted when a reconnect gave a new socket: for [method connect_socket] read from [param peer]
## from now on; for [method connect_multiplayer] the client has already put the new peer in place
## of the old one if it was the tree's [member MultiplayerAPI.multiplayer_peer].
signal reconnected(peer: Object)
## Emitted whenever a request fails, with the same [Dictionary] the coroutine returns.
signal request_failed(result: Dictionary)

## Close codes after which the client joins the same room again: 1006 (the connection dropped
## without a close frame), 1011 (the game server went away without closing), 1012 (Usher is
## restarting: another replica takes over), 1013 (try again later). See docs/api.md.
const RETRYABLE_CLOSE_CODES: Array[int] = [1006, 1011, 1012, 1013]
## Error code of a request that got no answer (refused, timed out, blocked by CORS).
const NETWORK_ERROR := "network_error"

## Usher's public URL, e.g. [code]https://play.example.com[/code]. Empty means the page's own
## origin in a web export (the usual setup: the game is served by the same host as Usher).
@export var base_url: String = ""
## Seconds before a request without an answer fails with [constant NETWORK_ERROR].
@export var request_timeout: float = 15.0
## How many times to join the same room again after a retryable close; 0 turns reconnects off.
@export var max_reconnect_attempts: int = 3
## Seconds to wait before the first reconnect; each further attempt waits twice as long.
@export var reconnect_delay: float = 0.5

## The current player token (a JWT), empty until [method request_token] succeeds.
var token: String = ""
## The player id the token names.
var player_id: String = ""
## The player's display name, as Usher accepted it.
var player_name: String = ""
## The last successful join (room, ticket, connect_url, ...), used to reconnect.
var current_join: Dictionary = {}

var _token_deadline_ms: int = 0 # Time.get_ticks_msec() after which the token is renewed
var _socket: WebSocketPeer = null # the raw socket, also the one inside a multiplayer peer
var _mp: WebSocketMultiplayerPeer = null
var _open: bool = false
var _closing_by_us: bool = false
var _reconnecting: bool = false
var _last_close_code: int = 0
var _last_close_reason: String = ""


## Asks Usher for a player token naming a new player. [param name] is the display name (at most
## 32 printable characters; empty lets Usher pick [code]Guest-XXXX[/code]).
func request_token(name: String = "") -> Dictionary:
	var body := {}
	if name != "":
		body["name"] = name
	var res := await _request(HTTPClient.METHOD_POST, "/request_token", body, "")
	if res.ok:
		token = str(res.get("token", ""))
		player_id = str(res.get("player_id", ""))
		player_name = str(res.get("name", ""))
		_token_deadline_ms = Time.get_ticks_msec() + int(_token_lifetime(token) * 1000.0 * 0.9)
	return res


## Takes a player made elsewhere — [param session] is a [code]/request_token[/code] answer
## ([code]token[/code], [code]player_id[/code], [code]name[/code]), e.g. the one the portal keeps
## in the page's sessionStorage — so that the client rejoins and reconnects as that player.
func use_session(session: Dictionary) -> void:
	token = str(session.get("token", ""))
	player_id = str(session.get("player_id", ""))
	player_name = str(session.get("name", ""))
	_token_deadline_ms = Time.get_ticks_msec() + int(_token_lifetime(token) * 1000.0 * 0.5)


## Creates a room of [param game] and reserves the player's seat. A [param public] room is open
## to [method quick_match]. Asks for a token first if the client has none.
func create_room(game: String, public: bool = false) -> Dictionary:
	var body := {"game": game}
	if public:
		body["public"] = true
	return await _join(body)


## Joins the live room of [param game] with [param code] (case and surrounding spaces do not
## matter). Fails with [code]room_not_found[/code] or [code]room_full[/code].
func join_room(game: String, code: String) -> Dictionary:
	return await _join({"game": game, "room": code.strip_edges().to_upper()})


## Joins the fullest open public room of [param game], or creates one.
func quick_match(game: String) -> Dictionary:
	return await _join({"game": game, "quick": true})


## Opens a WebSocket to the game server of [param join] (a successful join). Read and send
## messages on the returned peer; the client polls it every frame and emits [signal connected]
## and [signal closed]. Returns null if the URL cannot be made.
func connect_socket(join: Dictionary) -> WebSocketPeer:
	var ws := WebSocketPeer.new()
	if not _dial(join, func(url: String) -> Error: return ws.connect_to_url(url)):
		return null
	_socket = ws
	return ws


## Opens a [WebSocketMultiplayerPeer] client to the game server of [param join], for
## [code]multiplayer.multiplayer_peer[/code] and RPCs (the game server is a Godot server using
## [UsherServer]). Returns null if the URL cannot be made.
func connect_multiplayer(join: Dictionary) -> WebSocketMultiplayerPeer:
	var mp := WebSocketMultiplayerPeer.new()
	if not _dial(join, func(url: String) -> Error: return mp.create_client(url)):
		return null
	_mp = mp
	_socket = mp.get_peer(1)
	return mp


## Drops the current socket and starts a new one with [param open] on the join's URL.
func _dial(join: Dictionary, open: Callable) -> bool:
	_reset_socket()
	var url := ws_url(str(join.get("connect_url", "")))
	if url == "":
		return false
	var err: Error = open.call(url)
	if err != OK:
		push_error("UsherClient: cannot connect to %s: %s" % [_redact(url), error_string(err)])
		return false
	current_join = join
	return true


## Closes the socket (no reconnect follows) with [param code] and [param reason].
func close(code: int = 1000, reason: String = "") -> void:
	_closing_by_us = true
	if _socket != null:
		_socket.close(code, reason)


## The WebSocket URL for [param connect_url] (as a join returns it): made absolute against
## [member base_url], with [code]ws[/code]/[code]wss[/code] for [code]http[/code]/[code]https[/code].
func ws_url(connect_url: String) -> String:
	if connect_url == "":
		push_error("UsherClient: the join has no connect_url")
		return ""
	if connect_url.begins_with("ws://") or connect_url.begins_with("wss://"):
		return connect_url
	var url := _absolute(connect_url)
	if url.begins_with("https://"):
		return "wss://" + url.substr(8)
	if url.begins_with("http://"):
		return "ws://" + url.substr(7)
	push_error("UsherClient: cannot make a WebSocket URL of %s (set base_url)" % _redact(url))
	return ""


## True when [param code] is a close code after which the client reconnects.
static func is_retryable_close(code: int) -> bool:
	return code == -1 or RETRYABLE_CLOSE_CODES.has(code)


func _process(_delta: float) -> void:
	if _socket == null:
		return
	if _mp != null:
		# The tree polls the peer it uses; poll it here only while it is not (yet) in use.
		if multiplayer.multiplayer_peer != _mp:
			_mp.poll()
	else:
		_socket.poll()
	var state := _socket.get_ready_state()
	if not _open:
		var up := state == WebSocketPeer.STATE_OPEN
		if _mp != null:
			up = _mp.get_connection_status() == MultiplayerPeer.CONNECTION_CONNECTED
		if up:
			_open = true
			connected.emit(current_join)
	if state == WebSocketPeer.STATE_CLOSED and not _reconnecting: # a reconnect watches its own socket
		var code := _socket.get_close_code()
		var reason := _socket.get_close_reason()
		var by_us := _closing_by_us
		_socket = null
		_open = false
		if not by_us and is_retryable_close(code) and max_reconnect_attempts > 0:
			_reconnect(code, reason)
		else:
			_mp = null
			closed.emit(code, reason)


func _reconnect(code: int, reason: String) -> void:
	_reconnecting = true
	var join := current_join
	var old_mp := _mp
	var delay := reconnect_delay
	for attempt in range(1, max_reconnect_attempts + 1):
		reconnecting.emit(attempt, code, reason)
		await get_tree().create_timer(delay).timeout
		delay *= 2.0
		var again := await join_room(str(join.get("game", "")), str(join.get("room", "")))
		if not again.ok:
			if again.code in ["room_not_found", "room_full", "unknown_game", "invalid_request"]:
				break # the room is gone: retrying cannot help
			continue
		var peer: Object = null
		if old_mp != null:
			var mp := connect_multiplayer(again)
			if mp != null and multiplayer.multiplayer_peer == old_mp:
				multiplayer.multiplayer_peer = mp
			peer = mp
		else:
			peer = connect_socket(again)
		if peer == null:
			continue
		if await _opened():
			_reconnecting = false
			reconnected.emit(peer)
			return
		code = _last_close_code
		reason = _last_close_reason
	_reconnecting = false
	_mp = null
	closed.emit(code, reason)


## Waits until the socket being reconnected is open (true) or closed (false).
func _opened() -> bool:
	var deadline := Time.get_ticks_msec() + int(request_timeout * 1000.0)
	while Time.get_ticks_msec() < deadline:
		await get_tree().process_frame
		if _open:
			return true
		if _socket == null:
			return false
		var state := _socket.get_ready_state()
		if state == WebSocketPeer.STATE_CLOSED:
			_last_close_code = _socket.get_close_code()
			_last_close_reason = _socket.get_close_reason()
			_socket = null
			return false
	_last_close_code = 1006
	_last_close_reason = "timed out"
	_reset_socket()
	return false


func _reset_socket() -> void:
	if _socket != null:
		_closing_by_us = true
		_socket.close(1000, "")
	_socket = null
	_mp = null
	_open = false
	_closing_by_us = false


func _join(body: Dictionary) -> Dictionary:
	if token == "" or Time.get_ticks_msec() >= _token_deadline_ms:
		var t := await request_token(player_name)
		if not t.ok:
			return t
	var res := await _request(HTTPClient.METHOD_POST, "/join", body, token)
	if not res.ok and res.code == "unauthorized":
		# The token expired or Usher's keys changed: one fresh token, one more try.
		var t := await request_token(player_name)
		if not t.ok:
			return t
		res = await _request(HTTPClient.METHOD_POST, "/join", body, token)
	if res.ok:
		current_join = res
	return res


func _request(method: int, path: String, body: Dictionary, bearer: String) -> Dictionary:
	var http := HTTPRequest.new()
	http.timeout = request_timeout
	add_child(http)
	var headers := PackedStringArray(["Content-Type: application/json"])
	if bearer != "":
		headers.append("Authorization: Bearer " + bearer)
	var url := _absolute(path)
	var err := http.request(url, headers, method, JSON.stringify(body))
	if err != OK:
		http.queue_free()
		return _fail(NETWORK_ERROR, "cannot send the request to %s: %s" % [url, error_string(err)], 0, 0)
	var answer: Array = await http.request_completed
	http.queue_free()
	var result: int = answer[0]
	var status: int = answer[1]
	var resp_headers: PackedStringArray = answer[2]
	var text := (answer[3] as PackedByteArray).get_string_from_utf8()
	if result != HTTPRequest.RESULT_SUCCESS or status == 0:
		return _fail(NETWORK_ERROR, "no answer from %s (HTTPRequest result %d)" % [url, result], 0, 0)
	var data: Variant = JSON.parse_string(text) if text != "" else {}
	if status >= 200 and status < 300:
		if not data is Dictionary:
			return _fail("invalid_response", "%s answered %d with a body that is not a JSON object" % [path, status], status, 0)
		var ok: Dictionary = data
		ok["ok"] = true
		return ok
	var code := "http_%d" % status
	var message := text.left(200)
	if data is Dictionary and (data as Dictionary).get("error") is Dictionary:
		var e: Dictionary = data["error"]
		code = str(e.get("code", code))
		message = str(e.get("message", message))
	return _fail(code, message, status, _retry_after(resp_headers))


func _fail(code: String, message: String, status: int, retry_after: int) -> Dictionary:
	var res := {"ok": false, "code": code, "message": message, "status": status, "retry_after": retry_after}
	request_failed.emit(res)
	return res


func _absolute(path: String) -> String:
	if path.begins_with("http://") or path.begins_with("https://"):
		return path
	var base := base_url
	if base == "" and OS.has_feature("web"):
		# Read as a property, not with JavaScriptBridge.eval: a page whose Content-Security-Policy
		# does not allow 'unsafe-eval' (Usher's does not) refuses eval.
		var location: JavaScriptObject = JavaScriptBridge.get_interface("location")
		base = str(location.origin) if location != null else ""
	return base.rstrip("/") + path


static func _retry_after(headers: PackedStringArray) -> int:
	for h in headers:
		var i := h.find(":")
		if i > 0 and h.left(i).strip_edges().to_lower() == "retry-after":
			return maxi(h.substr(i + 1).strip_edges().to_int(), 0)
	return 0


## Seconds a JWT lives (exp - iat), read from its payload; 60 if it cannot be read. The local
## clock never enters into it, so a skewed clock does not make the client renew too late.
static func _token_lifetime(jwt: String) -> float:
	var parts := jwt.split(".")
	if parts.size() != 3:
		return 60.0
	var b64 := parts[1].replace("-", "+").replace("_", "/")
	while b64.length() % 4 != 0:
		b64 += "="
	var claims: Variant = JSON.parse_string(Marshalls.base64_to_raw(b64).get_string_from_utf8())
	if not claims is Dictionary or not (claims as Dictionary).has("exp") or not (claims as Dictionary).has("iat"):
		return 60.0
	return maxf(float(claims["exp"]) - float(claims["iat"]), 1.0)


static func _redact(url: String) -> String:
	var i := url.find("?")
	return url if i < 0 else url.left(i) + "?…"
