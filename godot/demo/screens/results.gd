extends VBoxContainer
## The results, best first. The server ends the room a few seconds later.

## Emitted with the next screen's name.
signal done(next: String)

var list := VBoxContainer.new()


func _ready() -> void:
	var title := Label.new()
	title.text = "Results"
	title.add_theme_font_size_override("font_size", 36)
	add_child(title)
	add_child(list)
	var again := Button.new()
	again.text = "Back to the menu"
	again.pressed.connect(func() -> void:
		Net.client.close(1000, "done")
		multiplayer.multiplayer_peer = null
		done.emit("menu"))
	add_child(again)
	show_results(Net.results)
	Net.round_finished.connect(show_results)


## Lists [param results] ({"name", "score"}, best first).
func show_results(results: Array) -> void:
	for c in list.get_children():
		c.queue_free()
	var place := 1
	for r: Dictionary in results:
		var l := Label.new()
		l.text = "%d. %s — %d" % [place, r["name"], r["score"]]
		list.add_child(l)
		place += 1
