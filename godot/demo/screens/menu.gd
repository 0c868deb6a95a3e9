extends VBoxContainer
## The main menu: the player's name, create a room, join one by its code, or quick play.

## Emitted with the next screen's name once the player is in a room.
signal done(next: String)

## Characters room codes are made of (no 0, O, 1, I or L: see Usher's docs/api.md).
const CODE_ALPHABET := "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

var name_edit := LineEdit.new()
var code_edit := LineEdit.new()
var create_button := Button.new()
var join_button := Button.new()
var quick_button := Button.new()
var status := Label.new()


func _ready() -> void:
	add_theme_constant_override("separation", 12)
	var title := Label.new()
	title.text = "Usher Demo"
	title.add_theme_font_size_override("font_size", 40)
	title.horizontal_alignment = HORIZONTAL_ALIGNMENT_CENTER
	add_child(title)
	name_edit.placeholder_text = "Your name"
	name_edit.max_length = 32
	add_child(name_edit)
	create_button.text = "Create a room"
	create_button.pressed.connect(create)
	add_child(create_button)
	var row := HBoxContainer.new()
	code_edit.placeholder_text = "CODE"
	code_edit.max_length = 5
	code_edit.custom_minimum_size = Vector2(180, 0)
	code_edit.add_theme_font_override("font", DemoTheme.code_font())
	code_edit.add_theme_font_size_override("font_size", 28)
	code_edit.text_changed.connect(_on_code_changed)
	code_edit.text_submitted.connect(func(_t: String) -> void: join())
	row.add_child(code_edit)
	join_button.text = "Join"
	join_button.pressed.connect(join)
	row.add_child(join_button)
	add_child(row)
	quick_button.text = "Quick play"
	quick_button.pressed.connect(quick)
	add_child(quick_button)
	status.autowrap_mode = TextServer.AUTOWRAP_WORD
	add_child(status)
	_from_portal.call_deferred()


## In a browser, on the page Usher's portal opened after a join (usher dev serves this game's
## web build at /play/demo/): take that join and the portal's player from the tab's
## sessionStorage and go straight to the lobby, instead of joining a second time.
func _from_portal() -> void:
	if not OS.has_feature("web"):
		return
	var storage: JavaScriptObject = JavaScriptBridge.get_interface("sessionStorage")
	if storage == null:
		return
	var raw: Variant = storage.getItem("usher.join")
	storage.removeItem("usher.join")
	var join: Variant = JSON.parse_string(str(raw)) if raw is String and raw != "" else null
	if not join is Dictionary or not (join as Dictionary).has("connect_url") or str(join.get("game", "")) != Net.GAME:
		return
	var saved: Variant = storage.getItem("usher.session")
	var session: Variant = JSON.parse_string(str(saved)) if saved is String and saved != "" else null
	if session is Dictionary:
		Net.client.use_session(session)
		name_edit.text = Net.client.player_name
	print("Usher demo: joining room %s from the portal" % join["room"])
	Net.room = join["room"]
	Net.players = []
	multiplayer.multiplayer_peer = Net.client.connect_multiplayer(join)
	done.emit("lobby")


## Shows [param text] under the buttons.
func set_status(text: String) -> void:
	status.text = text


## Keeps the code field to upper-case code characters, and says why a character was refused.
func _on_code_changed(text: String) -> void:
	var clean := normalize_code(text)
	if clean != text:
		var caret := code_edit.caret_column
		code_edit.text = clean
		code_edit.caret_column = mini(caret, clean.length())
		if text.to_upper().contains("0") or text.to_upper().contains("O") or text.to_upper().contains("1") or text.to_upper().contains("I") or text.to_upper().contains("L"):
			set_status("Codes never contain 0, O, 1, I or L.")


## [param text] in upper case with every character a room code cannot hold removed.
static func normalize_code(text: String) -> String:
	var out := ""
	for ch in text.to_upper():
		if CODE_ALPHABET.contains(ch):
			out += ch
	return out


## Creates a room (open to quick play) and goes to its lobby.
func create() -> void:
	await _enter(func() -> Dictionary: return await Net.client.create_room(Net.GAME, true))


## Joins the room whose code is typed.
func join() -> void:
	var code := normalize_code(code_edit.text)
	if code.length() < 4:
		set_status("Type the 4 or 5 characters of the room's code.")
		return
	await _enter(func() -> Dictionary: return await Net.client.join_room(Net.GAME, code))


## Joins any open room, or creates one.
func quick() -> void:
	await _enter(func() -> Dictionary: return await Net.client.quick_match(Net.GAME))


func _enter(ask: Callable) -> void:
	_busy(true)
	set_status("Connecting…")
	if Net.client.token == "" or Net.client.player_name != name_edit.text.strip_edges():
		var t: Dictionary = await Net.client.request_token(name_edit.text.strip_edges())
		if not t.ok:
			_failed(t)
			return
	var join: Dictionary = await ask.call()
	if not join.ok:
		_failed(join)
		return
	Net.room = join["room"]
	Net.players = []
	multiplayer.multiplayer_peer = Net.client.connect_multiplayer(join)
	done.emit("lobby")


func _failed(res: Dictionary) -> void:
	_busy(false)
	set_status(describe_error(res))


## A sentence for a failed request (by its error code).
static func describe_error(res: Dictionary) -> String:
	match str(res.get("code", "")):
		"room_not_found":
			return "No room has that code. Check it with the host."
		"room_full":
			return "That room is full."
		"rate_limited":
			return "Too many tries: wait %d s." % int(res.get("retry_after", 1))
		"no_capacity":
			return "No game server is free right now: try again in a moment."
		"network_error":
			return "Cannot reach the server."
	return str(res.get("message", "Something went wrong."))


func _busy(on: bool) -> void:
	for b: Button in [create_button, join_button, quick_button]:
		b.disabled = on
