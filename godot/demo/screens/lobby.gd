extends VBoxContainer
## The lobby: the room code in the clear font, the players as the server lists them (by RPC), and
## the host's start button.

## Emitted with the next screen's name.
signal done(next: String)

var code_label: Label
var players_box := VBoxContainer.new()
var start_button := Button.new()
var status := Label.new()


func _ready() -> void:
	var hint := Label.new()
	hint.text = "Room code — tell your friends:"
	hint.horizontal_alignment = HORIZONTAL_ALIGNMENT_CENTER
	add_child(hint)
	code_label = DemoTheme.code_label(Net.room, 56)
	add_child(code_label)
	add_child(players_box)
	start_button.text = "Start the round"
	start_button.visible = false
	start_button.pressed.connect(func() -> void: Net.request_start.rpc_id(1))
	add_child(start_button)
	status.text = "Waiting for the game server…"
	add_child(status)
	var leave := Button.new()
	leave.text = "Leave"
	leave.pressed.connect(_leave)
	add_child(leave)
	Net.lobby_changed.connect(refresh)
	refresh()


## Redraws the players and the start button from what the server last said.
func refresh() -> void:
	code_label.text = Net.room
	for c in players_box.get_children():
		c.queue_free()
	for p: Dictionary in Net.players:
		var l := Label.new()
		l.text = ("★ " if p["id"] == Net.host_id else "• ") + str(p["name"])
		players_box.add_child(l)
	if not Net.players.is_empty():
		status.text = "%d player(s). %s" % [Net.players.size(),
			"You are the host: start when everyone is in." if Net.is_host() else "The host starts the round."]
	start_button.visible = Net.is_host()


func _leave() -> void:
	Net.client.close(1000, "left")
	multiplayer.multiplayer_peer = null
	done.emit("menu")
