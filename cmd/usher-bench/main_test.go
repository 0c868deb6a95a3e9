package main

import (
	"strings"
	"testing"
)

// TestRunRejectsBadFlags checks the command refuses bad settings before starting anything,
// with exit code 2 and a message naming what is wrong.
func TestRunRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--profiles", "echo20,tick"}, `profile "tick": unknown kind`},
		{[]string{"--profiles", "room8", "--connections", "4"}, "room8 needs at least 8 players"},
		{[]string{"--profiles", "echo20,echo20"}, "a profile is named twice"},
		{[]string{"--profiles", "echo300"}, "not below Usher's --max-message-rate"},
		{[]string{"--connections", "0"}, "--connections must be"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr strings.Builder
			if code := run(tc.args, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestHelpListsProfiles(t *testing.T) {
	var stderr strings.Builder
	if code := run([]string{"-h"}, &stderr); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	for _, s := range []string{"-profiles", "echo20", "room4", "default"} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("help lacks %q:\n%s", s, stderr.String())
		}
	}
}
