package reconcile

import (
	"errors"
	"testing"
)

// TestNodeRole: a load balancer's checks route writes only to the recorded
// acting primary that takes writes (and, with pacsd on every host, whose
// host's pacsd holds its lease), and reads to it and to streaming standbys.
func TestNodeRole(t *testing.T) {
	primary := &DBState{}
	streaming := &DBState{InRecovery: true, Receiver: "streaming"}
	tests := []struct {
		name, node string
		leased     bool
		h          *DBState
		err        error
		role       string
		passes     []string // the checks it passes
	}{
		{name: "the acting primary", node: "db1", leased: true, h: primary, role: "primary", passes: []string{CheckPrimary, CheckReadWrite, CheckReadOnly}},
		{name: "the acting primary without its lease", node: "db1", h: primary},
		{name: "a second primary", node: "db2", leased: true, h: primary},
		{name: "a streaming standby", node: "db2", h: streaming, role: "replica", passes: []string{CheckReplica, CheckReadOnly}},
		{name: "a standby not streaming", node: "db2", h: &DBState{InRecovery: true, Receiver: "waiting"}},
		{name: "the acting primary in recovery", node: "db1", leased: true, h: &DBState{InRecovery: true}},
		{name: "a server that does not answer", node: "db1", leased: true, err: errors.New("connection refused")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role, why := NodeRole(tt.node, "db1", tt.leased, tt.h, tt.err)
			if role != tt.role || (role == "") != (why != "") {
				t.Fatalf("NodeRole = %q, %q; want %q and a reason exactly when no role", role, why, tt.role)
			}
			for _, check := range LBChecks {
				want := false
				for _, p := range tt.passes {
					want = want || p == check
				}
				if got := CheckPasses(check, role); got != want {
					t.Errorf("check %s passes: %t, want %t", check, got, want)
				}
			}
		})
	}
}
