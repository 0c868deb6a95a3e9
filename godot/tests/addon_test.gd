extends "res://tests/test_case.gd"
## The parts of the addon that need no network: the server's reading of Usher's environment and
## of a player's identity on the requested URL, and the client's URL and token helpers.


func run() -> void:
	var who := UsherServer.parse_identity("ws://127.0.0.1:7001/?usher_player=p_abc&usher_name=Ann%20Lee&usher_room=K7QX")
	check_eq(who, {"player": "p_abc", "name": "Ann Lee", "room": "K7QX"}, "identity from the URL")
	check_eq(UsherServer.parse_identity("/x?usher_name=Bob+B&usher_player=p2#frag")["name"], "Bob B", "a + in the query is a space")
	check_eq(UsherServer.parse_identity("ws://h/")["player"], "", "no query: no player")

	var env := UsherServer.read_environment("7001", "127.0.0.1", "http://127.0.0.1:9359/", "demo", "demo-1")
	check_eq(env.get("port"), 7001, "USHER_PORT read")
	check_eq(env.get("bridge_url"), "http://127.0.0.1:9359", "trailing slash of USHER_BRIDGE_URL dropped")
	check(UsherServer.read_environment("", "", "http://x:1", "", "").has("error"), "no USHER_PORT is an error")
	check(UsherServer.read_environment("7001", "", "", "", "").has("error"), "no USHER_BRIDGE_URL is an error")

	var c := UsherClient.new()
	add_child(c)
	c.base_url = "https://play.example.com/"
	check_eq(c.ws_url("/connect?ticket=t1"), "wss://play.example.com/connect?ticket=t1", "https base gives wss")
	c.base_url = "http://127.0.0.1:8080"
	check_eq(c.ws_url("/connect?ticket=t1"), "ws://127.0.0.1:8080/connect?ticket=t1", "http base gives ws")
	c.base_url = ""
	check_eq(c.ws_url("/connect?ticket=t1"), page_origin().replace("http://", "ws://") + "/connect?ticket=t1",
		"empty base_url is the page's origin")
	for code in [1006, 1011, 1012, 1013, -1]:
		check(UsherClient.is_retryable_close(code), "close %d is retryable" % code)
	for code in [1000, 1001, 1008, 4001, 4002, 4003]:
		check(not UsherClient.is_retryable_close(code), "close %d is not retryable" % code)
	# {"iat": 1000, "exp": 2800} → a token that lives 30 minutes.
	var jwt := "eyJhbGciOiJFZERTQSJ9." + Marshalls.utf8_to_base64('{"iat":1000,"exp":2800}').replace("=", "") + ".sig"
	check_eq(UsherClient._token_lifetime(jwt), 1800.0, "token lifetime from exp - iat")
	c.queue_free()
