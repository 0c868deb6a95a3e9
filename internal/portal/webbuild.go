package portal

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"

	"github.com/usher-gg/usher/internal/godotpack"
)

//go:embed webbuild
var webBuild embed.FS

// WebBuildCSP is the Content-Security-Policy of a Godot web build's files: the portal's, plus
// what the engine needs to run — compiling its WebAssembly ('wasm-unsafe-eval') and its audio
// worklets.
const WebBuildCSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; " +
	"style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// WebBuildPath is where AddWebBuild serves game's web build: the page the portal opens.
func WebBuildPath(game string) string { return "/play/" + game + "/" }

// AddWebBuild adds a Godot 4 game's web build to files, under play/<game>/: the project in dir
// packed into game.pck, the pinned Godot web engine's files from engineDir (checked by
// SHA-256; godotpack.ErrNoEngine when they are not there), and a page that starts the engine
// in the whole window. The page is what a web export of the project would be, with the engine
// this repository pins.
func AddWebBuild(files map[string]File, game, dir, engineDir string) error {
	if err := godotpack.CheckEngine(engineDir); err != nil {
		return err
	}
	p := godotpack.Project{}
	if err := p.AddDir(dir, ""); err != nil {
		return fmt.Errorf("web build of %s: %w", game, err)
	}
	var pck bytes.Buffer
	if err := p.Pack(&pck); err != nil {
		return fmt.Errorf("web build of %s: %w", game, err)
	}
	prefix := "play/" + game + "/"
	add := func(name, ctype string, body []byte) {
		files[prefix+name] = File{Name: prefix + name, ContentType: ctype, Body: body, CSP: WebBuildCSP}
	}
	add("game.pck", "application/octet-stream", pck.Bytes())
	for _, f := range godotpack.EngineFiles {
		b, err := os.ReadFile(filepath.Join(engineDir, f))
		if err != nil {
			return err
		}
		ctype := "text/javascript; charset=utf-8"
		if filepath.Ext(f) == ".wasm" {
			ctype = "application/wasm"
		}
		add(f, ctype, b)
	}
	for _, f := range []string{"index.html", "boot.js", "boot.css"} {
		b, err := webBuild.ReadFile("webbuild/" + f)
		if err != nil {
			return err
		}
		add(f, typeOf(f), b)
	}
	return nil
}
