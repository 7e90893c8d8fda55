package reconcile

import "time"

// Event is one entry of a cluster's event history: an action pacsd carried
// out, or a decision not to act (a refused failover, drift found, a
// switchover that waits). It never holds a secret: reasons and results are
// the texts pacsd logs, which never carry one.
type Event struct {
	At      time.Time `json:"at"`
	Cluster string    `json:"cluster"`
	// Node is the node acted on or decided about, "" for the cluster.
	Node string `json:"node,omitempty"`
	// Kind is what happened: an action's kind ("start-container",
	// "base-backup", ...), or "failover", "switchover", "drift",
	// "failover-refused", "fence", ...
	Kind string `json:"kind"`
	// Target is what the action changed (a container, a role, a file).
	Target string `json:"target,omitempty"`
	// Reason is why pacsd acted or did not.
	Reason string `json:"reason,omitempty"`
	// Result is "ok", "refused", "failed: <error>", "skipped: <why>".
	Result string `json:"result"`
	// Duration is how long the action took ("" for a decision).
	Duration string `json:"duration,omitempty"`
	// Checksum is the checksum of the topology file in force.
	Checksum string `json:"checksum,omitempty"`
}

// EventsKept is how many events a store keeps per cluster; the oldest are
// dropped first.
const EventsKept = 1000
