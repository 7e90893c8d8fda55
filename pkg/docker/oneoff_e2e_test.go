package docker

import (
	"context"
	"maps"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// startContainer creates and starts a container of the image that runs
// script with sh and mounts vol at the data's mount point; it is paused when
// pause is set, and not started at all when start is false.
func startContainer(t *testing.T, r *Runtime, e *e2e.Env, name string, labels map[string]string, vol, script string, start, pause bool) string {
	t.Helper()
	ctx := e.Ctx(time.Minute)
	resp, err := r.cli.ContainerCreate(ctx,
		&container.Config{Image: e.Image, Entrypoint: []string{"sh", "-c", script}, Labels: labels},
		&container.HostConfig{NetworkMode: "none", Binds: []string{vol + ":" + reconcile.DataMount}}, nil, nil, name)
	if err != nil {
		t.Fatalf("while creating container %s: %v", name, err)
	}
	if !start {
		return resp.ID
	}
	if err := r.cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("while starting container %s: %v", name, err)
	}
	if pause {
		if err := r.cli.ContainerPause(ctx, resp.ID); err != nil {
			t.Fatalf("while pausing container %s: %v", name, err)
		}
	}
	return resp.ID
}

// with returns labels with kv (key, value, ...) added.
func with(labels map[string]string, kv ...string) map[string]string {
	l := maps.Clone(labels)
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return l
}

// TestE2ERemoveOneOffs: one-off containers a killed pacsd left on a node
// (running and writing into the data, paused, never started; labelled the
// way pacsd labels them now or did before LabelOneOff) are killed, confirmed
// stopped and removed; the node's own container, one-offs of another node and
// containers of another cluster stay. A RunOnce with a leftover's name then
// works.
func TestE2ERemoveOneOffs(t *testing.T) {
	e := e2e.Require(t)
	r := newRuntime(t, e)
	ctx := e.Ctx(5 * time.Minute)
	cluster := "c-" + e.RunID
	vol := e.Volume("n1-data")
	n1, n2 := labels(e, "n1"), labels(e, "n2")
	writer := "while true; do date +%s%N > " + reconcile.DataMount + "/ticker; sleep 0.05; done"

	node := startContainer(t, r, e, e.Name("n1"), with(n1, reconcile.LabelRole, "standby"), vol, "sleep 600", true, false)
	left := map[string]string{ // name -> id
		e.Name("n1-basebackup"): startContainer(t, r, e, e.Name("n1-basebackup"), with(n1, reconcile.LabelRole, "basebackup"), vol, writer, true, false),
		e.Name("n1-rewind"):     startContainer(t, r, e, e.Name("n1-rewind"), with(n1, reconcile.LabelRole, "rewind", reconcile.LabelOneOff, "rewind"), vol, "sleep 600", true, true),
		e.Name("n1-move-aside"): startContainer(t, r, e, e.Name("n1-move-aside"), with(n1, reconcile.LabelRole, "move-aside", reconcile.LabelOneOff, "move-aside"), vol, "true", false, false),
	}
	other := startContainer(t, r, e, e.Name("n2-basebackup"), with(n2, reconcile.LabelRole, "basebackup", reconcile.LabelOneOff, "basebackup"), e.Volume("n2-data"), "sleep 600", true, false)
	foreign := startContainer(t, r, e, e.Name("x-n1-rewind"), with(n1, reconcile.LabelCluster, "other-"+e.RunID, reconcile.LabelOneOff, "rewind"), e.Volume("x-data"), "sleep 600", true, false)

	// o is the next one-off of the node, with a leftover's name.
	o := reconcile.OneOff{Name: e.Name("n1-basebackup"), Image: e.Image, Labels: with(n1, reconcile.LabelRole, "basebackup", reconcile.LabelOneOff, "basebackup"),
		Mount: reconcile.Mount{Volume: vol}, Cmd: []string{"sh", "-c", "echo fresh"}}

	removed, err := r.RemoveOneOffs(ctx, cluster, "n1")
	if err != nil {
		t.Fatalf("RemoveOneOffs: %v", err)
	}
	want := make([]string, 0, len(left))
	for name := range left {
		want = append(want, name)
	}
	sort.Strings(want)
	sort.Strings(removed)
	if diff := cmp.Diff(want, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	for name := range left {
		assertGone(t, e, name)
	}
	for what, id := range map[string]string{"the node's own container": node, "a one-off of another node": other, "a one-off of another cluster": foreign} {
		c, err := r.cli.ContainerInspect(ctx, id)
		if err != nil || !c.State.Running {
			t.Errorf("%s (%s) was touched: %v, state %+v", what, short(id), err, c.State)
		}
	}

	// Nothing writes into the data any more.
	read := func() string {
		out, code, err := e.RunOnce("ticker", []string{"cat", reconcile.DataMount + "/ticker"}, []string{vol + ":" + reconcile.DataMount})
		if err != nil || code != 0 {
			t.Fatalf("while reading the ticker: exit %d, %v: %s", code, err, out)
		}
		return strings.TrimSpace(out)
	}
	first := read()
	time.Sleep(300 * time.Millisecond)
	if again := read(); again != first {
		t.Errorf("the data is still written after RemoveOneOffs: ticker %s, then %s", first, again)
	}

	if removed, err := r.RemoveOneOffs(ctx, cluster, "n1"); err != nil || len(removed) != 0 {
		t.Errorf("RemoveOneOffs again: removed %v, %v; want none, nil", removed, err)
	}
	var lines []string
	o.Progress = func(l string) { lines = append(lines, l) }
	code, tail, err := r.RunOnce(ctx, o)
	if err != nil || code != 0 || len(lines) != 1 || lines[0] != "fresh" {
		t.Errorf("RunOnce with the leftover's name: exit %d, %v, output %q (%s); want 0 and fresh", code, err, lines, tail)
	}
	assertGone(t, e, o.Name)

	// A node with nothing left: nothing to do.
	if removed, err := r.RemoveOneOffs(context.Background(), cluster, "n3"); err != nil || len(removed) != 0 {
		t.Errorf("RemoveOneOffs of a node without one-offs: removed %v, %v; want none, nil", removed, err)
	}
}
