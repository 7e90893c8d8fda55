package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPauseCommand: pause and resume write the cluster's maintenance mode
// to the state directory, once each (a second pause changes nothing and
// records nothing), record it in the history, and refuse a cluster the
// file does not declare.
func TestPauseCommand(t *testing.T) {
	path, store := eventsFile(t)
	for i, step := range []struct {
		cmd    string
		paused bool
	}{{"pause", true}, {"pause", true}, {"resume", false}} {
		code, out, errOut := runCLI(t, nil, step.cmd, "east", "-f", path)
		if code != exitOK || !strings.Contains(out, `cluster "east" is `) {
			t.Fatalf("step %d: pacsd %s: exit %d, %s%s", i, step.cmd, code, out, errOut)
		}
		ps, err := store.LoadPause("east")
		if err != nil || ps.Paused != step.paused || ps.At.IsZero() || !strings.HasPrefix(ps.By, "pacsd "+step.cmd) {
			t.Errorf("step %d: after pacsd %s: %+v, %v", i, step.cmd, ps, err)
		}
	}
	if ps, _ := store.LoadPause("west"); ps.Paused {
		t.Error("pausing east paused west")
	}
	evs, err := store.Events("east", time.Time{})
	if err != nil || len(evs) != 2 || evs[0].Kind != "pause" || evs[1].Kind != "resume" {
		t.Errorf("the history: %+v, %v; want one pause and one resume", evs, err)
	}
	if fi, err := os.Stat(filepath.Join(store.Dir, "pause-east.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the pause file: %v, %v", fi, err)
	}
	if code, _, errOut := runCLI(t, nil, "pause", "north", "-f", path); code != exitUsage || !strings.Contains(errOut, `"east"`) {
		t.Errorf("pause of an undeclared cluster: exit %d, %s", code, errOut)
	}
	if code, _, _ := runCLI(t, nil, "pause", "-f", path); code != exitUsage {
		t.Errorf("pause without a cluster in a file of two: exit %d", code)
	}
	if err := os.WriteFile(filepath.Join(store.Dir, "pause-east.json"), []byte("{\"paused\": tru"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, nil, "resume", "east", "-f", path); code != exitOK || !strings.Contains(errOut, "it is replaced") {
		t.Errorf("resume over a damaged pause file: exit %d, %s", code, errOut)
	}
	if ps, err := store.LoadPause("east"); err != nil || ps.Paused {
		t.Errorf("after resume over a damaged pause file: %+v, %v", ps, err)
	}
}
