extends VBoxContainer
## The round: tap as fast as you can until the time is up. Scores come from the server.

## Emitted with the next screen's name.
signal done(next: String)

var time_label := Label.new()
var score_label := Label.new()
var tap_button := Button.new()
var _ends_ms: int = 0


func _ready() -> void:
	time_label.add_theme_font_size_override("font_size", 32)
	add_child(time_label)
	tap_button.text = "TAP!"
	tap_button.custom_minimum_size = Vector2(0, 160)
	tap_button.pressed.connect(func() -> void: Net.tap.rpc_id(1))
	add_child(tap_button)
	add_child(score_label)
	_ends_ms = Time.get_ticks_msec() + int(Net.ROUND_SECONDS * 1000.0)
	Net.round_began.connect(func(s: float) -> void: _ends_ms = Time.get_ticks_msec() + int(s * 1000.0))
	Net.scores_changed.connect(_show_score)


func _process(_delta: float) -> void:
	time_label.text = "%.1f s" % maxf((_ends_ms - Time.get_ticks_msec()) / 1000.0, 0.0)


func _show_score() -> void:
	score_label.text = "Your taps: %d" % int(Net.scores.get(multiplayer.get_unique_id(), 0))
