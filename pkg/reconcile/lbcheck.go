package reconcile

import "fmt"

// The checks a load balancer (HAProxy, keepalived) asks of one node, the
// way it asks Patroni's REST API.
const (
	CheckPrimary   = "primary"    // it is the acting primary and takes writes
	CheckReadWrite = "read-write" // the same
	CheckReplica   = "replica"    // it is a standby that streams
	CheckReadOnly  = "read-only"  // either: it answers reads
)

// LBChecks are the checks, in the order they are served.
var LBChecks = []string{CheckPrimary, CheckReplica, CheckReadWrite, CheckReadOnly}

// NodeRole is a node's role as a load balancer's check sees it: "primary"
// when it is the recorded acting primary, may run as one (leased: with
// pacsd on every host, its host's pacsd holds the primary's lease), and its
// server answers and takes writes; "replica" when its server answers in
// recovery and its WAL receiver streams; "" otherwise, with why. A node that
// takes writes without being the acting primary is no primary to route
// writes to. It has no side effects.
func NodeRole(node, acting string, leased bool, h *DBState, herr error) (role, why string) {
	switch {
	case herr != nil:
		return "", "its server does not answer: " + herr.Error()
	case h == nil:
		return "", "its server's state is not known"
	case !h.InRecovery && node != acting:
		return "", fmt.Sprintf("it takes writes but %q is the acting primary", acting)
	case !h.InRecovery && !leased:
		return "", "this host's pacsd does not hold the primary's lease"
	case !h.InRecovery:
		return "primary", ""
	case h.Receiver != "streaming":
		return "", fmt.Sprintf("a standby whose WAL receiver is %q, not streaming", h.Receiver)
	}
	return "replica", ""
}

// CheckPasses reports whether a node of role passes check.
func CheckPasses(check, role string) bool {
	switch check {
	case CheckPrimary, CheckReadWrite:
		return role == "primary"
	case CheckReplica:
		return role == "replica"
	case CheckReadOnly:
		return role != ""
	}
	return false
}
