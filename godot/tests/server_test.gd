extends "res://tests/test_case.gd"
## UsherServer's bridge protocol, for real, against the local fleet's bridge: the Go test
## (internal/fleet/local/godot_test.go) serves it on the page's origin under /test/bridge, with
## the conformance recorder of --bridge-conformance watching. Only the WebSocket listener cannot
## run in the web engine, so players arrive as the events the listener would raise.

var s: UsherServer


func run() -> void:
	# The disconnect reason from the close code, as contract.DisconnectReason in Go.
	check_eq(UsherServer.disconnect_reason(1000), "left", "1000 left")
	check_eq(UsherServer.disconnect_reason(1001), "left", "1001 left")
	check_eq(UsherServer.disconnect_reason(4004), "lost", "4004 connection lost")
	check_eq(UsherServer.disconnect_reason(1012), "lost", "1012 Usher restarting")
	check_eq(UsherServer.disconnect_reason(1006), "lost", "1006 abnormal")
	check_eq(UsherServer.disconnect_reason(-1), "lost", "unknown: keep the seat")

	s = UsherServer.new()
	s.quit_on_shutdown = false
	s.empty_timeout = 0.0
	s.heartbeat_interval = 0.5
	s.bridge_url = page_origin() + "/test/bridge"
	add_child(s)
	var allocated: Array = [null]
	s.allocated.connect(func(room: String, players: PackedStringArray) -> void: allocated[0] = [room, players])
	var joined: Array = []
	s.player_joined.connect(func(id: int, player: String, name: String) -> void: joined.append([id, player, name]))
	var left: Array = []
	s.player_left.connect(func(id: int, player: String) -> void: left.append([id, player]))
	var stopping: Array = [false]
	s.shutdown_requested.connect(func() -> void: stopping[0] = true)

	s.report_ready()
	check_eq(await control("allocate"), 200, "the Go test saw /ready and gave the server room K7QX (p1 and p2 seated)")
	await _until(func() -> bool: return allocated[0] != null)
	check(allocated[0] != null, "allocated signal")
	if allocated[0] == null:
		return
	check_eq(allocated[0][0], "K7QX", "allocated room")
	check_eq(s.room, "K7QX", "room property")
	await _until(func() -> bool: return s.expected_players.size() == 2)
	check_eq(Array(s.expected_players), ["p1", "p2"], "expected players follow the long poll")
	check_eq(s.max_players, 2, "max players")

	_arrive(2, "p1", "Ann")
	await _drained()
	_arrive(3, "p1", "Ann") # the same player again: the newer connection wins
	await _drained()
	_leave(2) # the older one closes (4002): p1 is still connected, no disconnect report
	_arrive(4, "stranger", "Eve") # Usher never seated this player and the room is full: refused (4001)
	_arrive(5, "p2", "Bob")
	await _drained()
	check_eq(joined, [[2, "p1", "Ann"], [3, "p1", "Ann"], [5, "p2", "Bob"]], "player_joined for each accepted connection")
	check_eq(left, [[2, "p1"]], "player_left for the replaced connection")
	check_eq(Array(s.player_peers()).size(), 2, "two players in the game")
	check_eq(s.player_of(5), "p2", "player_of")
	check_eq(await control("connected-p1-p2"), 200, "the bridge has p1 and p2 connected, and no one else")

	await get_tree().create_timer(3.5).timeout # heartbeats must keep coming (the recorder allows 3 s)
	_leave(3)
	_leave(5)
	await _drained()
	check_eq(left.size(), 3, "player_left for everyone")
	check_eq(await control("connected-none"), 200, "the bridge has no one connected")
	await s.shutdown()
	check(stopping[0], "shutdown_requested")
	check_eq(await control("check"), 200, "the bridge is in Shutdown; the recorder saw only the stranger")


func _arrive(id: int, player: String, player_name: String) -> void:
	s._peers[id] = {"player": player, "name": player_name, "joined": false}
	s._queue({"kind": "connected", "id": id})


func _leave(id: int) -> void:
	var info: Dictionary = s._peers[id]
	s._peers.erase(id)
	info["reason"] = UsherServer.disconnect_reason(1000) # a clean close: the seat is freed
	s._queue({"kind": "disconnected", "id": id, "info": info})


func _drained() -> void:
	await _until(func() -> bool: return s._events.is_empty() and not s._sending_events)


func _until(cond: Callable, seconds: float = 10.0) -> void:
	var deadline := Time.get_ticks_msec() + int(seconds * 1000.0)
	while not cond.call() and Time.get_ticks_msec() < deadline:
		await get_tree().process_frame
