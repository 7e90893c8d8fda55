package main

import (
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
)

// TestE2EDataLocationChanged edits the acting primary's volume in the file,
// as an operator might, and proves that no command re-creates the primary on
// the new, empty volume: plan, apply and switchover refuse with what to do,
// the primary keeps its container and its rows, and nothing was created on
// the new location.
func TestE2EDataLocationChanged(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	tp.apply(t)
	tp.writeAndRead(t, "KEEP1")
	before := containerID(t, e, tp.container("db1"))

	moved := tp.container("db1") + "-moved"
	tp.nodeBody = map[string]string{"db1": " volume = \"" + moved + "\" "}
	tp.write(t)
	for _, args := range [][]string{
		{"plan", "-f", tp.path},
		{"apply", "-f", tp.path},
		{"switchover", "db2", "-f", tp.path},
	} {
		code, stdout, stderr := runCLI(t, nil, args...)
		if code != exitProblem || !strings.Contains(stderr+stdout, "Data Location Changed") || !strings.Contains(stderr+stdout, `node "db1"`) {
			t.Fatalf("pacsd %s with the primary's volume edited: exit %d, want %d and Data Location Changed on db1\n%s%s", args[0], code, exitProblem, stdout, stderr)
		}
	}
	if after := containerID(t, e, tp.container("db1")); after != before {
		t.Fatalf("the primary's container was re-created (%s -> %s)", before, after)
	}
	if got := tp.node("db1").QueryString("SELECT count(*)::text FROM patient WHERE pat_id = 'KEEP1'"); got != "1" {
		t.Fatalf("the primary lost its row: count %s", got)
	}
	if _, err := e.Docker.VolumeInspect(e.Ctx(time.Minute), moved); err == nil {
		t.Errorf("volume %s was created although every command refused", moved)
	}
}

func containerID(t *testing.T, e *e2e.Env, name string) string {
	t.Helper()
	c, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), name)
	if err != nil {
		t.Fatalf("while inspecting %s: %v", name, err)
	}
	return c.ID
}
