package godotweb_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usher-gg/usher/internal/godotpack"
	"github.com/usher-gg/usher/internal/godotweb"
)

// project is a minimal project whose main scene runs script.
func project(script string) godotpack.Project {
	return godotpack.Project{
		"project.godot": []byte("config_version=5\n\n[application]\nconfig/name=\"t\"\nrun/main_scene=\"res://main.tscn\"\n"),
		"main.tscn":     []byte("[gd_scene load_steps=2 format=3]\n\n[ext_resource type=\"Script\" path=\"res://main.gd\" id=\"1\"]\n\n[node name=\"Main\" type=\"Node\"]\nscript = ExtResource(\"1\")\n"),
		"main.gd":       []byte(script),
		"util.gd":       []byte("class_name Util\nextends RefCounted\n\nstatic func twice(x: int) -> int:\n\treturn 2 * x\n"),
	}
}

func TestRunPrintsAndExits(t *testing.T) {
	b := godotweb.ForTest(t)
	p := project("extends Node\n\nfunc _ready() -> void:\n" +
		"\tprint(\"hello \", Util.twice(21), \" \", OS.get_cmdline_args())\n" +
		"\tget_tree().quit(7)\n")
	res, err := b.Run(context.Background(), p, godotweb.Options{Args: []string{"--who=test"}, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, strings.Join(res.Output, "\n"))
	}
	if res.ExitCode != 7 {
		t.Errorf("exit code = %d, want 7", res.ExitCode)
	}
	out := strings.Join(res.Output, "\n")
	for _, want := range []string{"Godot Engine v4.6", "hello 42", "--who=test"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunFailsFastOnParseError(t *testing.T) {
	b := godotweb.ForTest(t)
	p := project("extends Node\n\nfunc _ready() -> void:\n\tvar x: int = \"not an int\"\n\tget_tree().quit(0)\n")
	start := time.Now()
	res, err := b.Run(context.Background(), p, godotweb.Options{Timeout: time.Minute})
	if !errors.Is(err, godotweb.ErrScript) {
		t.Fatalf("run = %v, want ErrScript\n%s", err, strings.Join(res.Output, "\n"))
	}
	if d := time.Since(start); d > 45*time.Second {
		t.Errorf("a parse error took %s to report; want it reported as soon as it is printed", d)
	}
}

func TestPackLayout(t *testing.T) {
	var b bytes.Buffer
	if err := (godotpack.Project{"a.txt": []byte("hello"), "dir/b.gd": []byte("class_name B\nextends Node\n")}).Pack(&b); err != nil {
		t.Fatal(err)
	}
	pck := b.Bytes()
	le := binary.LittleEndian
	if string(pck[:4]) != "GDPC" || le.Uint32(pck[4:]) != 3 || le.Uint32(pck[8:]) != 4 || le.Uint32(pck[12:]) != 6 {
		t.Fatalf("header = %q", pck[:24])
	}
	base, dir := le.Uint64(pck[24:]), le.Uint64(pck[32:])
	if base%16 != 0 || base < 104 {
		t.Errorf("file base %d: want 16-aligned after the 104-byte header", base)
	}
	n := le.Uint32(pck[dir:])
	if n != 3 { // a.txt, dir/b.gd and the class cache
		t.Fatalf("files = %d, want 3", n)
	}
	off := dir + 4
	got := map[string]string{}
	for range n {
		l := uint64(le.Uint32(pck[off:]))
		name := strings.TrimRight(string(pck[off+4:off+4+l]), "\x00")
		off += 4 + l
		fo, size := le.Uint64(pck[off:]), le.Uint64(pck[off+8:])
		off += 8 + 8 + 16 + 4
		got[name] = string(pck[base+fo : base+fo+size])
	}
	if got["a.txt"] != "hello" {
		t.Errorf("a.txt = %q", got["a.txt"])
	}
	if c := got[".godot/global_script_class_cache.cfg"]; !strings.Contains(c, `"class": &"B"`) || !strings.Contains(c, `"base": &"Node"`) || !strings.Contains(c, `"path": "res://dir/b.gd"`) {
		t.Errorf("class cache = %q", c)
	}
}
