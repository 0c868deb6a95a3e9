extends "res://tests/test_case.gd"
## (c) The demo's client against `usher dev` (the Go test serves its "demo" game with the example
## server, since a Godot server cannot listen in the web engine): the menu refuses ambiguous code
## characters, says when a room does not exist, and a created room leads to the lobby showing
## its code, up to where the lobby waits for its Godot server.


func run() -> void:
	check(Net.client != null and Net.server == null, "the demo runs as a client without --server")
	check(Net.is_server_run(PackedStringArray(["--headless", "--server"])), "--server starts the dedicated server")
	Net.client.base_url = args.get("usher", "")
	var main: Node = load("res://main.tscn").instantiate()
	add_child(main)
	await get_tree().process_frame
	check_eq(main.get("current"), "menu", "the demo starts at the menu")
	var menu: Node = main.get_child(0)

	menu.call("_on_code_changed", "k0o1il7q")
	check_eq(menu.get("code_edit").text, "K7Q", "the code field keeps code characters only, upper case")
	check(str(menu.get("status").text).contains("never contain"), "and says why: " + menu.get("status").text)

	menu.get("code_edit").text = "ZZZZ"
	await menu.call("join")
	check(str(menu.get("status").text).begins_with("No room has that code"), "a missing room is explained: " + menu.get("status").text)
	check(not (menu.get("join_button") as Button).disabled, "the buttons work again after a failure")

	menu.get("name_edit").text = "Dee"
	await menu.call("create")
	await get_tree().process_frame
	check_eq(main.get("current"), "lobby", "creating a room leads to the lobby")
	check_eq(Net.client.player_name, "Dee", "the token carries the typed name")
	var room: String = Net.room
	check(room.length() >= 4 and room.length() <= 5, "the room code " + room)
	var lobby: Node = main.get_child(main.get_child_count() - 1)
	check_eq((lobby.get("code_label") as Label).text, room, "the lobby shows the code")
	check(str(lobby.get("status").text).contains("Waiting for the game server"), "the lobby waits for its Godot server")
	check(multiplayer.multiplayer_peer is WebSocketMultiplayerPeer, "the multiplayer peer is Usher's WebSocket")
	main.queue_free()
