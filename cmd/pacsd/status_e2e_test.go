package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/daemon"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// nodeView returns node's view in cluster of st.
func nodeView(st daemon.Status, cluster, node string) (reconcile.NodeView, error) {
	cs := st.Clusters[cluster]
	if cs == nil {
		return reconcile.NodeView{}, fmt.Errorf("no cluster %s in the status", cluster)
	}
	for _, n := range cs.Nodes {
		if n.Node == node {
			return n, nil
		}
	}
	return reconcile.NodeView{}, fmt.Errorf("no node %s in the status of %s: %+v", node, cluster, cs.Nodes)
}

// TestE2EStatusView proves the operator's view on a real cluster: /status
// and 'pacsd status' show the primary and a streaming standby with its lag,
// slot retention and last action; the per-node metrics follow; a killed
// standby shows as not connected, then streaming again once pacsd brought
// it back, without a pass being asked for; the event history holds the
// actions; and with the daemon stopped, 'pacsd status' observes directly.
func TestE2EStatusView(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	r := startDaemon(t, tp, "5m")
	r.waitReady(t, 5*time.Minute)
	tp.checkStreaming(t)
	name := tp.name

	streaming := func() error {
		st, err := r.status()
		if err != nil {
			return err
		}
		p, err := nodeView(st, name, "db1")
		if err != nil {
			return err
		}
		s, err := nodeView(st, name, "db2")
		if err != nil {
			return err
		}
		switch {
		case p.Role != "primary" || p.Container != "running" || p.Timeline < 1 || p.LSN == "":
			return fmt.Errorf("db1: %+v", p)
		case s.Role != "standby" || s.Replication != reconcile.ReplStreaming || s.LagBytes == nil || s.LagSeconds == nil:
			return fmt.Errorf("db2: %+v", s)
		case s.SlotRetained == nil || s.SlotStatus == "" || s.Slot == "":
			return fmt.Errorf("db2's slot: %+v", s)
		case s.LastAction == nil || s.LastAction.Result != "ok":
			return fmt.Errorf("db2's last action: %+v", s.LastAction)
		case st.Clusters[name].Acting != "db1" || st.Clusters[name].Controller == "":
			return fmt.Errorf("cluster: %+v", st.Clusters[name].ClusterView)
		}
		return nil
	}
	waitFor(t, time.Minute, "db1 primary and db2 streaming in /status", streaming)

	for _, line := range []string{
		`pacsd_node_role{cluster="` + name + `",node="db1",role="primary"} 1`,
		`pacsd_node_role{cluster="` + name + `",node="db2",role="standby"} 1`,
		`pacsd_node_replication_state{cluster="` + name + `",node="db2",state="streaming"} 1`,
		`pacsd_node_up{cluster="` + name + `",host="local",node="db2"} 1`,
		`pacsd_cluster_acting_primary{cluster="` + name + `",node="db1"} 1`,
		`pacsd_cluster_writable_nodes{cluster="` + name + `"} 1`,
		`pacsd_cluster_epoch{cluster="` + name + `"} 0`,
		`pacsd_actions_total{cluster="` + name + `",kind="base-backup",result="ok"} 1`,
	} {
		if err := r.metric(t, line); err != nil {
			t.Error(err)
		}
	}

	code, out, errOut := runCLI(t, nil, "status", "-f", r.path, name)
	t.Logf("pacsd status:\n%s", out)
	if code != exitOK || !strings.Contains(out, "cluster "+name+": acting primary db1, epoch 0") || !strings.Contains(out, "streaming") || !strings.Contains(out, "LAST ACTION") {
		t.Errorf("pacsd status with the daemon: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, nil, "status", "--json", "-f", r.path)
	var js daemon.Status
	if code != exitOK || json.Unmarshal([]byte(out), &js) != nil || len(js.Clusters[name].Nodes) != 2 {
		t.Errorf("pacsd status --json: exit %d\n%s", code, out)
	}

	// A killed standby: not connected, then streaming again, on the
	// engine's events and the view's own refresh (resync is 5m).
	if err := e.Docker.ContainerKill(e.Ctx(time.Minute), tp.container("db2"), "KILL"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "db2 not streaming in /status", func() error {
		st, err := r.status()
		if err != nil {
			return err
		}
		s, err := nodeView(st, name, "db2")
		if err != nil {
			return err
		}
		if s.Replication == reconcile.ReplStreaming {
			return errors.New("db2 still streams")
		}
		return nil
	})
	waitFor(t, 2*time.Minute, "db2 streaming again in /status", streaming)

	// The history: every action, with the file's checksum.
	_, body, err := r.get("/events?cluster=" + name)
	var events []reconcile.Event
	if err != nil || json.Unmarshal([]byte(body), &events) != nil {
		t.Fatalf("/events: %v\n%s", err, body)
	}
	kinds := map[string]int{}
	for _, ev := range events {
		kinds[ev.Kind]++
		if ev.Checksum == "" || ev.Cluster != name || ev.Result == "" {
			t.Errorf("an event without its checksum, cluster or result: %+v", ev)
		}
	}
	if kinds["base-backup"] != 1 || kinds["start-container"] < 3 || kinds["create-container"] != 2 {
		t.Errorf("/events kinds: %v", kinds)
	}

	// The daemon stopped: status observes directly, and the history is
	// read from the state directory.
	r.stop(t)
	code, out, errOut = runCLI(t, nil, "events", "-f", r.path, "--json")
	var kept []reconcile.Event
	if code != exitOK || json.Unmarshal([]byte(out), &kept) != nil || len(kept) < len(events) {
		t.Errorf("pacsd events --json after the daemon stopped: exit %d, %d events (the daemon served %d)\n%s%s", code, len(kept), len(events), out, errOut)
	}
	code, out, errOut = runCLI(t, nil, "status", "-f", r.path)
	if code != exitOK || !strings.Contains(out, "observed directly") || !strings.Contains(out, "streaming") || !strings.Contains(out, "primary") {
		t.Errorf("pacsd status without the daemon: exit %d\n%s%s", code, out, errOut)
	}
}
