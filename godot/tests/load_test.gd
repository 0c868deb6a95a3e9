extends "res://tests/test_case.gd"
## (a) Every GDScript file of the pack (the addon, the demo, these tests) loads without an
## error, and every scene of the demo can be instantiated. A parse error prints SCRIPT ERROR,
## which fails the run at once. Scripts that extend EditorPlugin are editor-only (the web engine
## is an export build, without editor classes) and are skipped, by name.


func run() -> void:
	var scripts: Array[String] = []
	var scenes: Array[String] = []
	_walk("res://", scripts, scenes)
	check(scripts.size() >= 5, "found %d scripts" % scripts.size())
	for path in scripts:
		var text := FileAccess.get_file_as_string(path)
		if text.contains("\nextends EditorPlugin") or text.begins_with("@tool\nextends EditorPlugin"):
			print("skip ", path, " (EditorPlugin: editor only)")
			continue
		var s: Variant = load(path)
		check(s is GDScript and (s as GDScript).can_instantiate(), "script loads: " + path)
	for path in scenes:
		if path.begins_with("res://tests/"):
			continue
		var packed: Variant = load(path)
		var ok: bool = packed is PackedScene and (packed as PackedScene).can_instantiate()
		check(ok, "scene loads: " + path)
	check(ClassDB.class_exists("WebSocketMultiplayerPeer"), "WebSocketMultiplayerPeer exists")


func _walk(dir: String, scripts: Array[String], scenes: Array[String]) -> void:
	var d := DirAccess.open(dir)
	if d == null:
		return
	for f in d.get_files():
		var path := dir.path_join(f)
		if f.ends_with(".gd"):
			scripts.append(path)
		elif f.ends_with(".tscn"):
			scenes.append(path)
	for sub in d.get_directories():
		if not sub.begins_with("."):
			_walk(dir.path_join(sub), scripts, scenes)
