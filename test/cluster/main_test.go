package cluster

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from the rendered overlays")

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if err := stopCluster(); err != nil {
		fmt.Fprintln(os.Stderr, "stop the test control plane:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
