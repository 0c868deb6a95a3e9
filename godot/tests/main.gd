extends Node
## Runs one test script of res://tests/ in the Godot web engine, chosen by the command line
## (--test=NAME runs res://tests/NAME_test.gd), prints each check and quits with the number of
## failed checks. Usher's Go tests (test/e2e/godot_test.go) pack the demo with this folder and
## run it; --usher=URL names the Usher to talk to.

const TestCase := preload("res://tests/test_case.gd")


func _ready() -> void:
	var args := {}
	for a in OS.get_cmdline_args():
		if a.begins_with("--") and a.contains("="):
			var kv := a.substr(2).split("=", true, 1)
			args[kv[0]] = kv[1]
	var name: String = args.get("test", "")
	if name == "" or not ResourceLoader.exists("res://tests/%s_test.gd" % name):
		printerr("TEST ERROR: no such test: --test=%s" % name)
		get_tree().quit(100)
		return
	var script: GDScript = load("res://tests/%s_test.gd" % name)
	var t: TestCase = script.new()
	t.args = args
	add_child(t)
	await t.run()
	var failed := t.failed
	print("TEST %s: %d checks, %d failed" % [name, t.checks, failed])
	get_tree().quit(mini(failed, 99))
