package reconcile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/pgconf"
)

// TestView: the operator's view of each node follows from one observation:
// the primary, a streaming standby with its lag, slot and sync state, a
// standby the primary shows no sender for (and why), a missing container,
// a node whose engine does not answer, and a pending restart.
func TestView(t *testing.T) {
	c := testCluster(t, "")
	run := func() *ContainerState { return &ContainerState{Running: true, Status: "running"} }
	slot2 := pgconf.SlotName("pacs", "db2")
	obs := &Observed{State: ClusterState{Acting: "db1", Epoch: 3}, Nodes: map[string]*NodeState{
		"db1": {Container: run(), DB: &DBState{Timeline: 4, WAL: 5000, SyncStandbys: []string{"db2"},
			Settings: map[string]Setting{"shared_buffers": {PendingRestart: true}, "work_mem": {}},
			Replicas: map[string]ReplicaState{"db2": {State: "streaming", ReplayLSN: 4000, ReplayLag: 0.25}},
			SlotInfo: map[string]SlotState{slot2: {Active: true, Retained: 1000, WALStatus: "reserved"}}}},
		"db2": {Container: run(), DB: &DBState{InRecovery: true, Timeline: 4, WAL: 4000, ReceivedWAL: 4500, Receiver: "streaming"}},
		"db3": {Container: nil},
	}}
	v := View(c, obs)
	lag2, ret2, secs := int64(500), int64(1000), 0.25 // behind in WAL received: 5000 - 4500
	want := ClusterView{Cluster: "pacs", Acting: "db1", Declared: "db1", Epoch: 3, Nodes: []NodeView{
		{Node: "db1", Container: "running", Role: "primary", Timeline: 4, LSN: "0/1388", PendingRestart: []string{"shared_buffers"}},
		{Node: "db2", Container: "running", Role: "standby", Timeline: 4, LSN: "0/FA0", LagBytes: &lag2, LagSeconds: &secs,
			Replication: ReplStreaming, Sync: true, Slot: slot2, SlotRetained: &ret2, SlotStatus: "reserved"},
		{Node: "db3", Container: "missing", Role: "stopped", Replication: ReplNotConnected, Slot: pgconf.SlotName("pacs", "db3"),
			Why: "its server does not run"},
	}}
	if diff := cmp.Diff(want, v); diff != "" {
		t.Errorf("View (-want +got):\n%s", diff)
	}

	// db2's WAL receiver waits and the primary shows no sender: not
	// connected, and why; db3's engine does not answer.
	obs.Nodes["db1"].DB.Replicas = map[string]ReplicaState{}
	obs.Nodes["db2"].DB.Receiver = "waiting"
	obs.Nodes["db3"] = &NodeState{Unreachable: "connection refused"}
	v = View(c, obs)
	if n := v.Nodes[1]; n.Replication != ReplNotConnected || n.Why != "its WAL receiver is waiting" || n.LagSeconds != nil || n.LagBytes == nil {
		t.Errorf("a standby without a sender: %+v", n)
	}
	if n := v.Nodes[2]; n.Role != "unknown" || n.Container != "unknown" || n.Why != "its Docker engine does not answer: connection refused" {
		t.Errorf("a node whose engine does not answer: %+v", n)
	}
	// The primary down: its standbys do not stream, and say why.
	obs.Nodes["db1"] = &NodeState{Container: &ContainerState{Status: "exited"}}
	v = View(c, obs)
	if n := v.Nodes[0]; n.Role != "stopped" || n.Container != "exited" {
		t.Errorf("a stopped primary: %+v", n)
	}
	if n := v.Nodes[1]; n.Replication != ReplNotConnected || n.Why != "the acting primary db1 does not answer" || n.LagBytes != nil {
		t.Errorf("a standby of a stopped primary: %+v", n)
	}
	// The acting primary answers in recovery: its standbys say so.
	obs.Nodes["db1"] = &NodeState{Container: run(), DB: &DBState{InRecovery: true}}
	if n := View(c, obs).Nodes[1]; n.Why != "the acting primary db1 is in recovery (it does not take writes)" {
		t.Errorf("a standby of an acting primary in recovery: %+v", n)
	}
	// No record, and no node shows a primary beyond doubt: the acting
	// primary is unknown, never taken from the file.
	obs.State = ClusterState{}
	if v := View(c, obs); v.Acting != "" || !strings.HasPrefix(v.Nodes[1].Why, "the acting primary is not known") {
		t.Errorf("without a record: acting %q, db2 %+v", v.Acting, v.Nodes[1])
	}
	// Nothing observed: every node unknown.
	if v := View(c, nil); len(v.Nodes) != 3 || v.Nodes[0].Role != "unknown" {
		t.Errorf("View of nothing: %+v", v)
	}
}
