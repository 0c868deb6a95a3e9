extends "res://tests/test_case.gd"
## (b) UsherClient against a running `usher dev` (the Go test starts it, with the example game
## at two seats a room, behind a loopback forwarder it can cut): token, create, connect_socket,
## the example server's welcome, a second player joining by code, a message relayed between
## them, room_not_found, room_full and invalid_request as "ok": false, a reconnect after the
## connection drops, and a close the client must not retry (4002 replaced).


func run() -> void:
	var a := new_client()
	var tok := await a.request_token("Ann")
	if not check(tok.ok, "request_token ok: %s" % str(tok)):
		return
	check_eq(tok.get("name"), "Ann", "token name")
	check(a.player_id.begins_with("p_"), "player id " + a.player_id)

	var join := await a.create_room("example")
	if not check(join.ok, "create_room ok: %s" % str(join)):
		return
	var room: String = join["room"]
	check(room.length() >= 4 and room.length() <= 5, "room code " + room)
	check(str(join.get("connect_url", "")).begins_with("/connect?ticket="), "connect_url")
	check_eq(join.get("max_players"), 2.0, "max_players")

	var wa := a.connect_socket(join)
	check(wa != null, "connect_socket gives a socket")
	check(await wait_signal(a.connected) != null, "a connected")
	var welcome: Variant = await next_message(wa)
	check(welcome is Dictionary and welcome["type"] == "welcome", "a gets the welcome: %s" % str(welcome))
	if welcome is Dictionary:
		check_eq(welcome["player"], a.player_id, "welcome names a")
		check_eq(welcome["room"], room, "welcome names the room")

	var b := new_client()
	var jb := await b.join_room("example", " %s " % room.to_lower()) # token asked for on the way
	check(jb.ok, "b joins by code (lower case, spaces): %s" % str(jb))
	check(b.token != "", "b got a token by itself")
	var wb := b.connect_socket(jb)
	check(await wait_signal(b.connected) != null, "b connected")
	var wel_b: Variant = await next_message(wb)
	check(wel_b is Dictionary and wel_b["type"] == "welcome" and (wel_b["players"] as Array).size() == 2,
		"b's welcome lists two players: %s" % str(wel_b))

	wa.send_text("hello from a")
	check_eq(await next_message(wb), "hello from a", "b receives a's message")
	wb.send_text('{"move": 1}')
	check_eq(await next_message(wa), {"move": 1.0}, "a receives b's message")

	var c := new_client()
	var full := await c.join_room("example", room)
	check(not full.ok, "a third player cannot join a room of two")
	check_eq(full.get("code"), "room_full", "room_full code")
	check_eq(full.get("status"), 409, "room_full status")
	check(str(full.get("message", "")) != "", "room_full message")
	var missing := await c.join_room("example", "ZZZZ" if room != "ZZZZ" else "YYYY")
	check_eq(missing.get("code"), "room_not_found", "room_not_found code")
	check_eq(missing.get("status"), 404, "room_not_found status")
	var bad := await c.join_room("example", "0OIL")
	check_eq(bad.get("code"), "invalid_request", "a code with 0/O/I/L is invalid_request")
	check_eq(bad.get("retry_after"), 0, "no retry_after on a 400")

	# An expired or forged token: the client gets a new one and tries once more.
	c.token = "not-a-token"
	var quick := await c.quick_match("example")
	check(quick.ok, "quick_match after renewing a bad token: %s" % str(quick))
	c.close()

	# The connection drops (the Go test cuts every forwarded TCP connection: close 1006). Both
	# clients join the same room again and get a new socket.
	var reconnecting: Variant = [null]
	a.reconnecting.connect(func(attempt: int, code: int, _r: String) -> void: reconnecting[0] = [attempt, code], CONNECT_ONE_SHOT)
	var a_peer: Array = [null] # each may reconnect before we look: catch it whenever it does
	a.reconnected.connect(func(peer: Object) -> void: a_peer[0] = peer, CONNECT_ONE_SHOT)
	var b_peer: Array = [null]
	b.reconnected.connect(func(peer: Object) -> void: b_peer[0] = peer, CONNECT_ONE_SHOT)
	check_eq(await control("cut"), 200, "the Go test cut the connections")
	var deadline := Time.get_ticks_msec() + 15000
	while a_peer[0] == null and Time.get_ticks_msec() < deadline:
		await get_tree().process_frame
	var rec: Variant = null if a_peer[0] == null else [a_peer[0]]
	check(rec != null, "a reconnected")
	check(reconnecting[0] != null and UsherClient.is_retryable_close(reconnecting[0][1]),
		"a saw a retryable close first: %s" % str(reconnecting[0]))
	if rec == null:
		return
	var wa2: WebSocketPeer = rec[0]
	var wel2: Variant = await next_message(wa2)
	check(wel2 is Dictionary and wel2["room"] == room, "a is welcomed to the same room again: %s" % str(wel2))
	deadline = Time.get_ticks_msec() + 15000
	while b_peer[0] == null and Time.get_ticks_msec() < deadline:
		await get_tree().process_frame
	if b_peer[0] != null:
		var wb2: WebSocketPeer = b_peer[0]
		await next_message(wb2) # b's new welcome
		wa2.send_text("after the cut")
		check_eq(await next_message(wb2), "after the cut", "messages flow again after reconnecting")
	else:
		check(false, "b reconnected")

	# The same player connecting again replaces the older connection: 4002, not retried.
	var a2 := new_client()
	a2.token = a.token
	a2.player_name = a.player_name
	a2._token_deadline_ms = Time.get_ticks_msec() + 60000
	var again := await a2.join_room("example", room)
	check(again.ok, "the same player joins again: %s" % str(again))
	a2.connect_socket(again)
	var closed: Variant = await wait_signal(a.closed, 10.0)
	check(closed != null and closed[0] == 4002, "a's older connection closed with 4002: %s" % str(closed))
	await get_tree().create_timer(0.5).timeout
	check(a._socket == null, "a did not reconnect after 4002")
