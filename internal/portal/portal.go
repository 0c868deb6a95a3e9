// Package portal holds the player-facing web pages, embedded in the binary: the portal (a card
// per game from GET /games; create, join by code, quick play) and the example game's small
// web client. `usher dev` serves them at / on the public listener; in a cluster the same files
// are served by nginx (manifests/base/portal/site, kept equal by this package's tests).
package portal

import (
	"embed"
	"io/fs"
	"mime"
	"path"
	"sort"
)

//go:embed site
var site embed.FS

// CSP is the Content-Security-Policy of every page: this origin's own scripts, styles and
// images, and API calls and WebSockets to this origin only (usher dev serves both). The
// nginx portal sends the same policy with the API's origin added to connect-src.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// File is one page or asset.
type File struct {
	Name        string // e.g. "index.html"
	ContentType string
	Body        []byte
	CSP         string // its Content-Security-Policy; empty: CSP
}

// Files returns every file of the site by name.
func Files() map[string]File {
	out := map[string]File{}
	_ = fs.WalkDir(site, "site", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := site.ReadFile(p)
		if err != nil {
			return err
		}
		name := p[len("site/"):]
		out[name] = File{Name: name, ContentType: typeOf(name), Body: b}
		return nil
	})
	return out
}

// typeOf is the Content-Type of a file by its name.
func typeOf(name string) string {
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		return ct
	}
	return "application/octet-stream"
}

// Names returns the file names, sorted.
func Names() []string {
	var names []string
	for n := range Files() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
