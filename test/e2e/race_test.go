//go:build race

package e2e

// raceEnabled: the race detector slows the fake Agones allocator ~10×; the heaviest tests run
// in the plain pass only (CI runs both).
const raceEnabled = true
