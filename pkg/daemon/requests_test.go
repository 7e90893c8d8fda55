package daemon

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// askFake is etcd as Ask sees it: the record names db1, whose host a holds
// the lease; the hosts in reporting report. carry, when set, plays the
// pacsd that takes the request: it is called with each request read.
type askFake struct {
	mu        sync.Mutex
	reporting map[string]bool
	leaseHost string
	req       *reconcile.Request
	put       int
	cancelled bool
	carry     func(r *reconcile.Request)
}

func (f *askFake) Load(string) (reconcile.ClusterState, error) {
	return reconcile.ClusterState{Acting: "db1", Epoch: 1}, nil
}
func (f *askFake) LeaseHost(context.Context, string) (string, error) { return f.leaseHost, nil }
func (f *askFake) Reporting(context.Context, string) (map[string]bool, error) {
	return f.reporting, nil
}

func (f *askFake) PutRequest(_ context.Context, r reconcile.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.State = reconcile.RequestAsked
	f.req, f.put = &r, f.put+1
	return nil
}

func (f *askFake) GetRequest(context.Context, string, string) (reconcile.Request, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.req == nil {
		return reconcile.Request{}, false, nil
	}
	if f.carry != nil {
		f.carry(f.req)
	}
	return *f.req, true, nil
}

func (f *askFake) CancelRequest(context.Context, string, string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.req == nil || f.req.State != reconcile.RequestAsked {
		return false, nil
	}
	f.req, f.cancelled = nil, true
	return true, nil
}

func (f *askFake) DeleteRequest(context.Context, string, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.req = nil
	return nil
}

func askCluster(t *testing.T) *spec.Cluster {
	t.Helper()
	f := fileFixture(t, hostedTopology)
	file, diags := spec.ParseFile(f.path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return file.Clusters[0]
}

func TestAsk(t *testing.T) {
	defer func(take, beat, poll time.Duration) { AskTakeTimeout, AskBeatTimeout, askPoll = take, beat, poll }(AskTakeTimeout, AskBeatTimeout, askPoll)
	AskTakeTimeout, AskBeatTimeout, askPoll = 300*time.Millisecond, 300*time.Millisecond, 10*time.Millisecond
	c := askCluster(t)
	restart := func(node string) reconcile.Request {
		return reconcile.Request{Command: reconcile.CommandRestart, Node: node, By: "test"}
	}
	t.Run("its host's pacsd does not report: nothing asked", func(t *testing.T) {
		f := &askFake{reporting: map[string]bool{"a": true}}
		_, err := Ask(context.Background(), f, c, restart("db2"), func(string) {})
		var r *reconcile.RefusedError
		if !errors.As(err, &r) || !strings.Contains(err.Error(), `no pacsd of host "b" reports`) || f.put != 0 {
			t.Fatalf("Ask: %v, %d requests put; want a refusal and none", err, f.put)
		}
	})
	t.Run("not taken: withdrawn", func(t *testing.T) {
		f := &askFake{reporting: map[string]bool{"a": true, "b": true}}
		_, err := Ask(context.Background(), f, c, restart("db2"), func(string) {})
		var r *reconcile.RefusedError
		if !errors.As(err, &r) || !strings.Contains(err.Error(), `the pacsd of host "b" did not take the request`) || !f.cancelled {
			t.Fatalf("Ask: %v (withdrawn: %v); want it withdrawn and refused", err, f.cancelled)
		}
	})
	t.Run("taken, then silent", func(t *testing.T) {
		f := &askFake{reporting: map[string]bool{"a": true, "b": true}, carry: func(r *reconcile.Request) {
			if r.State == reconcile.RequestAsked {
				r.State, r.TakenBy, r.Beat = reconcile.RequestRunning, "b", time.Now()
			}
		}}
		_, err := Ask(context.Background(), f, c, restart("db2"), func(string) {})
		if err == nil || !strings.Contains(err.Error(), `the pacsd of host "b" took the request and gave no sign of life`) || f.cancelled {
			t.Fatalf("Ask: %v; want it given up, not withdrawn", err)
		}
	})
	t.Run("carried out: lines passed on, the result returned, the request removed", func(t *testing.T) {
		n := 0
		f := &askFake{reporting: map[string]bool{"a": true, "b": true}, carry: func(r *reconcile.Request) {
			if r.Host != "b" {
				t.Errorf("asked host %q, want b", r.Host)
			}
			switch n++; n {
			case 1:
				r.State, r.TakenBy, r.Beat = reconcile.RequestRunning, "b", time.Now()
				r.Say("took it")
			case 2:
				r.Say("restarting")
				r.Say("streaming")
			case 3:
				r.State, r.Restarted = reconcile.RequestDone, &reconcile.RestartDone{Node: "db2", Took: time.Second}
			}
		}}
		var said []string
		got, err := Ask(context.Background(), f, c, restart("db2"), func(l string) { said = append(said, l) })
		if err != nil || got.Restarted == nil || got.Restarted.Node != "db2" || f.req != nil {
			t.Fatalf("Ask: %+v, %v (request kept: %v)", got, err, f.req != nil)
		}
		if strings.Join(said[1:], "|") != "took it|restarting|streaming" {
			t.Errorf("lines passed on: %q", said)
		}
	})
	t.Run("refused where it is carried out", func(t *testing.T) {
		f := &askFake{reporting: map[string]bool{"a": true, "b": true}, leaseHost: "a", carry: func(r *reconcile.Request) {
			r.State, r.TakenBy, r.Error, r.Refused = reconcile.RequestDone, "a", "cluster \"pacs\": the acting primary \"db1\" answers", true
		}}
		got, err := Ask(context.Background(), f, c, reconcile.Request{Command: reconcile.CommandFailover, Node: "db2"}, func(string) {})
		var r *reconcile.RefusedError
		if !errors.As(err, &r) || got.Host != "a" {
			t.Fatalf("Ask of a failover: %v, carried out on %q; want a refusal from the lease's holder a", err, got.Host)
		}
	})
}

func TestRequestNewLines(t *testing.T) {
	var r reconcile.Request
	for i := 0; i < reconcile.RequestLines+5; i++ {
		r.Say(strings.Repeat("x", i))
	}
	if len(r.Lines) != reconcile.RequestLines || r.Said != reconcile.RequestLines+5 {
		t.Fatalf("kept %d lines, said %d", len(r.Lines), r.Said)
	}
	if got := r.NewLines(r.Said - 2); len(got) != 2 || got[1] != r.Lines[len(r.Lines)-1] {
		t.Errorf("the last two: %q", got)
	}
	if got := r.NewLines(0); len(got) != reconcile.RequestLines {
		t.Errorf("all that is kept: %d lines", len(got))
	}
	if got := r.NewLines(r.Said); len(got) != 0 {
		t.Errorf("nothing new: %q", got)
	}
}
