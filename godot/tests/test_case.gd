extends Node
## The base of the test scripts: checks that print and count, and small waits. Each line a
## check prints starts with "ok " or "FAIL ", so the Go side can show it.

## The command line as key → value (--key=value).
var args: Dictionary = {}
## Checks made and checks failed.
var checks: int = 0
var failed: int = 0


## The test: overridden by each test script, awaited by main.gd.
func run() -> void:
	pass


## Records one check: [param ok] must hold; [param what] says what was checked.
func check(ok: bool, what: String) -> bool:
	checks += 1
	if ok:
		print("ok   ", what)
	else:
		failed += 1
		printerr("FAIL ", what)
	return ok


## Checks that [param got] equals [param want].
func check_eq(got: Variant, want: Variant, what: String) -> bool:
	return check(got == want, "%s: got %s, want %s" % [what, JSON.stringify(got), JSON.stringify(want)])


## Waits for [param sig] at most [param seconds]; returns its arguments, or null on timeout.
func wait_signal(sig: Signal, seconds: float = 10.0) -> Variant:
	var box := {"args": null, "done": false}
	var on := func(a0: Variant = null, a1: Variant = null, a2: Variant = null) -> void:
		if not box["done"]:
			box["done"] = true
			box["args"] = [a0, a1, a2]
	sig.connect(on, CONNECT_ONE_SHOT)
	var deadline := Time.get_ticks_msec() + int(seconds * 1000.0)
	while not box["done"] and Time.get_ticks_msec() < deadline:
		await get_tree().process_frame
	if not box["done"] and sig.is_connected(on):
		sig.disconnect(on)
	return box["args"]


## Waits for the next text message on [param ws] (polled by its UsherClient) at most
## [param seconds]; returns it parsed as JSON if it is, else the text, or null on timeout.
func next_message(ws: WebSocketPeer, seconds: float = 10.0) -> Variant:
	var deadline := Time.get_ticks_msec() + int(seconds * 1000.0)
	while Time.get_ticks_msec() < deadline:
		if ws.get_available_packet_count() > 0:
			var text := ws.get_packet().get_string_from_utf8()
			var json := JSON.new()
			return json.data if json.parse(text) == OK else text
		await get_tree().process_frame
	return null


## The page's origin (the Go test serves /test/ there).
func page_origin() -> String:
	return str(JavaScriptBridge.eval("window.location.origin", true))


## POSTs to the Go test's control endpoint /test/[param what]; returns the HTTP status.
func control(what: String) -> int:
	var http := HTTPRequest.new()
	add_child(http)
	http.request(page_origin() + "/test/" + what, PackedStringArray(), HTTPClient.METHOD_POST, "")
	var answer: Array = await http.request_completed
	http.queue_free()
	return answer[1]


## A new UsherClient in the tree, talking to --usher.
func new_client() -> UsherClient:
	var c := UsherClient.new()
	c.base_url = args.get("usher", "")
	c.reconnect_delay = 0.2
	add_child(c)
	return c
