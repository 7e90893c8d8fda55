package reconcile

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// mObs is an observation of the cluster of testCluster: db1 the primary,
// streamed from by the standbys named, each other standby running and
// answering but not streaming; change adjusts it.
func mObs(streaming []string, change func(o *Observed)) *Observed {
	o := &Observed{Nodes: map[string]*NodeState{}}
	run := func() *ContainerState { return &ContainerState{ID: "id", Running: true, Status: "running"} }
	o.Nodes["db1"] = &NodeState{Container: run(), DB: &DBState{WAL: 100, Streaming: streaming, SyncStandbys: streaming}}
	for _, n := range []string{"db2", "db3"} {
		db := &DBState{InRecovery: true, WAL: 90, ReceivedWAL: 90}
		for _, s := range streaming {
			if s == n {
				db.Receiver = "streaming"
			}
		}
		o.Nodes[n] = &NodeState{Container: run(), DB: db}
	}
	if change != nil {
		change(o)
	}
	return o
}

func TestRestartOrder(t *testing.T) {
	c := testCluster(t, "")
	for _, tt := range []struct {
		acting string
		asked  []string
		want   []string
	}{
		{"db1", []string{"db1", "db2", "db3"}, []string{"db2", "db3", "db1"}},
		{"db2", []string{"db1", "db2", "db3"}, []string{"db1", "db3", "db2"}},
		{"db1", []string{"db3", "db1"}, []string{"db3", "db1"}},
		{"db1", []string{"db3"}, []string{"db3"}},
		{"db1", []string{"db9", "db2"}, []string{"db2"}},
	} {
		if got := RestartOrder(c, tt.acting, tt.asked); !cmp.Equal(got, tt.want) {
			t.Errorf("RestartOrder(%s, %v) = %v, want %v", tt.acting, tt.asked, got, tt.want)
		}
	}
}

func TestRestartCheck(t *testing.T) {
	both := []string{"db2", "db3"}
	tests := []struct {
		name   string
		sync   bool
		obs    *Observed
		acting string
		node   string
		q      RestartQuery
		here   *Here
		want   RestartStep
		refuse string // a part of the refusal; "" when it goes ahead
	}{
		{name: "a streaming standby", obs: mObs(both, nil), node: "db2", want: RestartStep{Node: "db2"}},
		{name: "a standby that does not stream, alone", obs: mObs([]string{"db2"}, nil), node: "db3", want: RestartStep{Node: "db3"}},
		{name: "the primary in place", obs: mObs(both, nil), node: "db1", want: RestartStep{Node: "db1", Primary: true}},
		{name: "the primary with switchover: the most WAL", obs: mObs(both, func(o *Observed) { o.Nodes["db3"].DB.ReceivedWAL = 95 }),
			node: "db1", q: RestartQuery{Switchover: true}, want: RestartStep{Node: "db1", Primary: true, SwitchTo: "db3"}},
		{name: "the primary with switchover: a streaming one only", obs: mObs([]string{"db2"}, func(o *Observed) { o.Nodes["db3"].DB.ReceivedWAL = 95 }),
			node: "db1", q: RestartQuery{Switchover: true}, want: RestartStep{Node: "db1", Primary: true, SwitchTo: "db2"}},
		{name: "the primary with switchover: none streams", obs: mObs(nil, nil),
			node: "db1", q: RestartQuery{Switchover: true}, refuse: "no standby streams from it"},
		{name: "the primary does not take writes", obs: mObs(both, func(o *Observed) { o.Nodes["db1"].DB.InRecovery = true }),
			node: "db2", refuse: `the acting primary "db1" does not take writes now`},
		{name: "the primary does not answer", obs: mObs(both, func(o *Observed) { o.Nodes["db1"].DB, o.Nodes["db1"].DBError = nil, "connection refused" }),
			node: "db1", refuse: "connection refused"},
		{name: "whole cluster: a standby does not stream", obs: mObs([]string{"db2"}, nil), node: "db2", q: RestartQuery{Whole: true},
			refuse: `needs every standby streaming from "db1" first`},
		{name: "whole cluster: healthy", obs: mObs(both, nil), node: "db3", q: RestartQuery{Whole: true, WasActing: "db1"}, want: RestartStep{Node: "db3"}},
		{name: "the acting primary changed meanwhile", obs: mObs(both, nil), node: "db3", q: RestartQuery{Whole: true, WasActing: "db2"},
			refuse: `changed from "db2" to "db1"`},
		{name: "a stopped standby", obs: mObs([]string{"db2"}, func(o *Observed) { o.Nodes["db3"].Container.Running, o.Nodes["db3"].Container.Status = false, "exited" }),
			node: "db3", refuse: "its container is exited"},
		{name: "a standby without container", obs: mObs([]string{"db2"}, func(o *Observed) { o.Nodes["db3"].Container, o.Nodes["db3"].DB = nil, nil }),
			node: "db3", refuse: "it has no container"},
		{name: "a second primary", obs: mObs([]string{"db2"}, func(o *Observed) { o.Nodes["db3"].DB.InRecovery = false }),
			node: "db3", refuse: "it takes writes although"},
		{name: "an engine that does not answer", obs: mObs(both, func(o *Observed) { o.Nodes["db3"] = &NodeState{Unreachable: "timeout"} }),
			node: "db3", refuse: "its Docker engine does not answer (timeout)"},
		{name: "an unknown node", obs: mObs(both, nil), node: "db9", refuse: `has no node "db9"`},
		{name: "synchronous: the only streaming standby", sync: true, obs: mObs([]string{"db2"}, nil), node: "db2",
			refuse: "--accept-commit-wait"},
		{name: "synchronous: the only streaming standby, accepted", sync: true, obs: mObs([]string{"db2"}, nil), node: "db2",
			q: RestartQuery{AcceptCommitWait: true}, want: RestartStep{Node: "db2"}},
		{name: "synchronous: another standby streams", sync: true, obs: mObs(both, nil), node: "db2", want: RestartStep{Node: "db2"}},
		{name: "synchronous: restarting the one that does not stream changes nothing", sync: true, obs: mObs([]string{"db2"}, nil), node: "db3", want: RestartStep{Node: "db3"}},
		{name: "synchronous switchover: one the primary waits for", sync: true,
			obs: mObs(both, func(o *Observed) {
				o.Nodes["db1"].DB.SyncStandbys = []string{"db2"}
				o.Nodes["db3"].DB.ReceivedWAL = 99
			}),
			node: "db1", q: RestartQuery{Switchover: true}, want: RestartStep{Node: "db1", Primary: true, SwitchTo: "db2"}},
		{name: "every host: another host's node", obs: mObs(both, nil), node: "db2", here: &Here{Host: "b", MayRun: true},
			refuse: "only the pacsd of that host restarts it"},
		{name: "every host: the primary without its lease", obs: mObs(both, nil), node: "db1", here: &Here{Host: "", MayRun: false},
			refuse: "does not hold its lease"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCluster(t, "  failover {\n    automatic = true\n  }\n")
			c.Replication.Synchronous = tt.sync
			got, err := RestartCheck(c, tt.obs, "db1", tt.node, tt.q, tt.here)
			if tt.refuse != "" {
				var r *RefusedError
				if err == nil || !errors.As(err, &r) || !strings.Contains(err.Error(), tt.refuse) {
					t.Fatalf("RestartCheck = %+v, %v; want a refusal with %q", got, err, tt.refuse)
				}
				return
			}
			if err != nil {
				t.Fatalf("RestartCheck refused: %v", err)
			}
			if got != tt.want {
				t.Errorf("RestartCheck = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSwitchoverTargetPrefersTheFilesPrimary(t *testing.T) {
	c := testCluster(t, "")
	c.Primary = "db3" // the file names db3; db1 acts since a failover
	obs := mObs([]string{"db2", "db3"}, func(o *Observed) { o.Nodes["db2"].DB.ReceivedWAL = 99 })
	if got := SwitchoverTarget(c, obs, "db1"); got != "db3" {
		t.Errorf("SwitchoverTarget = %q, want the file's primary db3", got)
	}
	obs.Nodes["db3"].DB.Receiver = ""
	if got := SwitchoverTarget(c, obs, "db1"); got != "db2" {
		t.Errorf("SwitchoverTarget = %q with the file's primary not streaming, want db2", got)
	}
}

func TestReinitCheck(t *testing.T) {
	tests := []struct {
		name   string
		sync   bool
		accept bool
		obs    *Observed
		node   string
		here   *Here
		refuse string
	}{
		{name: "synchronous: the only streaming standby", sync: true, obs: mObs([]string{"db2"}, nil), node: "db2", refuse: "'pacsd reinit db2 --accept-commit-wait'"},
		{name: "synchronous: the only streaming standby, accepted", sync: true, accept: true, obs: mObs([]string{"db2"}, nil), node: "db2"},
		{name: "synchronous: another one streams", sync: true, obs: mObs([]string{"db2", "db3"}, nil), node: "db2"},
		{name: "a streaming standby", obs: mObs([]string{"db2", "db3"}, nil), node: "db2"},
		{name: "a standby that does not stream", obs: mObs([]string{"db2"}, nil), node: "db3"},
		{name: "a standby without container or data", obs: mObs([]string{"db2"}, func(o *Observed) { o.Nodes["db3"] = &NodeState{} }), node: "db3"},
		{name: "partial data", obs: mObs([]string{"db2"}, func(o *Observed) { o.Nodes["db3"] = &NodeState{Data: DataState{Partial: true, Major: 15}} }), node: "db3"},
		{name: "the acting primary", obs: mObs([]string{"db2"}, nil), node: "db1", refuse: "'pacsd switchover db2'"},
		{name: "the primary does not take writes", obs: mObs([]string{"db2"}, func(o *Observed) { o.Nodes["db1"].DB = nil }), node: "db2",
			refuse: `taken from the acting primary "db1", which does not take writes now`},
		{name: "a second primary", obs: mObs([]string{"db2"}, func(o *Observed) { o.Nodes["db3"].DB.InRecovery = false }), node: "db3",
			refuse: "may hold writes no other node has"},
		{name: "data unknown", obs: mObs([]string{"db2"}, func(o *Observed) { o.Nodes["db3"] = &NodeState{Data: DataState{Unknown: true}} }), node: "db3",
			refuse: "could not be inspected"},
		{name: "the data location changed", obs: mObs([]string{"db2"}, func(o *Observed) { o.Nodes["db3"].Container.Mount = &Mount{Volume: "elsewhere"} }), node: "db3",
			refuse: `volume "elsewhere"`},
		{name: "an engine that does not answer", obs: mObs([]string{"db2"}, func(o *Observed) { o.Nodes["db3"] = &NodeState{Unreachable: "timeout"} }), node: "db3",
			refuse: "does not answer"},
		{name: "every host: another host's node", obs: mObs([]string{"db2"}, nil), node: "db2", here: &Here{Host: "b"}, refuse: "only the pacsd of that host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCluster(t, "")
			c.Replication.Synchronous = tt.sync
			err := ReinitCheck(c, tt.obs, "db1", tt.node, tt.accept, tt.here)
			if tt.refuse == "" {
				if err != nil {
					t.Fatalf("ReinitCheck refused: %v", err)
				}
				return
			}
			var r *RefusedError
			if err == nil || !errors.As(err, &r) || !strings.Contains(err.Error(), tt.refuse) {
				t.Fatalf("ReinitCheck = %v; want a refusal with %q", err, tt.refuse)
			}
		})
	}
}

func TestRequestHost(t *testing.T) {
	hosts := `
  node "db1" {
    host = "a"
    port = 15432
  }
  node "db2" {
    host = "b"
    port = 15432
  }
}
host "a" {
  address = "10.0.0.11"
  docker  = "unix:///run/a.sock"
}
host "b" {
  address = "10.0.0.12"
  docker  = "unix:///run/b.sock"
}
`
	all := map[string]bool{"a": true, "b": true}
	onlyB := map[string]bool{"b": true}
	tests := []struct {
		name      string
		automatic bool
		command   string
		node      string
		leaseHost string
		reporting map[string]bool
		host      string
		leader    bool
		refuse    string
	}{
		{name: "restart: the node's host", command: CommandRestart, node: "db2", reporting: all, host: "b"},
		{name: "reinit: the node's host", command: CommandReinit, node: "db2", reporting: all, host: "b"},
		{name: "restart: its host's pacsd does not report", command: CommandRestart, node: "db1", reporting: onlyB, refuse: `no pacsd of host "a" reports`},
		{name: "failover: the lease holder", automatic: true, command: CommandFailover, node: "db2", leaseHost: "a", reporting: all, host: "a"},
		{name: "failover: the old primary's host, no lease", command: CommandFailover, node: "db2", reporting: all, host: "a"},
		{name: "failover: the old primary's host gone, automatic: the leader", automatic: true, command: CommandFailover, node: "db2", reporting: onlyB, leader: true},
		{name: "failover: the old primary's host gone, manual: nobody", command: CommandFailover, node: "db2", reporting: onlyB, refuse: "no lease bounds"},
		{name: "an unknown node", command: CommandRestart, node: "db9", reporting: all, refuse: `has no node "db9"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := ""
			if tt.automatic {
				extra = "  failover {\n    automatic = true\n  }\n"
			}
			c := testClusterWith(t, extra, hosts)
			host, leader, err := RequestHost(c, tt.command, tt.node, "db1", tt.leaseHost, tt.reporting)
			if tt.refuse != "" {
				if err == nil || !strings.Contains(err.Error(), tt.refuse) {
					t.Fatalf("RequestHost = %q, %v, %v; want a refusal with %q", host, leader, err, tt.refuse)
				}
				return
			}
			if err != nil || host != tt.host || leader != tt.leader {
				t.Errorf("RequestHost = %q, leader %v, %v; want %q, leader %v", host, leader, err, tt.host, tt.leader)
			}
		})
	}
}
