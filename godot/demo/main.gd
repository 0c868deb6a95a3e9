extends Control
## The demo's one scene: it shows the menu, then the lobby, the round and the results, each a
## screen of its own (screens/). On a dedicated server (--server) it shows nothing.

const SCREENS := {
	"menu": preload("res://screens/menu.tscn"),
	"lobby": preload("res://screens/lobby.tscn"),
	"round": preload("res://screens/round.tscn"),
	"results": preload("res://screens/results.tscn"),
}

## The screen being shown ("menu", "lobby", "round" or "results").
var current: String = ""


func _ready() -> void:
	if Net.server != null:
		return
	Net.round_began.connect(func(_s: float) -> void: show_screen("round"))
	Net.round_finished.connect(func(_r: Array) -> void: show_screen("results"))
	Net.disconnected.connect(_on_disconnected)
	show_screen("menu")


## Replaces the current screen with [param name].
func show_screen(name: String) -> Node:
	for c in get_children():
		c.queue_free()
	var s: Node = SCREENS[name].instantiate()
	add_child(s)
	current = name
	if s.has_signal("done"):
		s.connect("done", _on_screen_done)
	return s


func _on_screen_done(next: String) -> void:
	show_screen(next)


func _on_disconnected(code: int, reason: String) -> void:
	if current == "results":
		return # the server ends the room after the results: that is the normal end
	var menu := show_screen("menu")
	menu.call("set_status", "Disconnected (%d %s)" % [code, reason])
