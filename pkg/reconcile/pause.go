package reconcile

import "time"

// Pause is a cluster's maintenance mode ('pacsd pause'): while Paused,
// pacsd keeps observing and reporting but takes no action on the cluster:
// no pass acts, no failover is made. It is kept in the cluster store
// beside the record, so that every pacsd process sees it.
type Pause struct {
	Paused bool      `json:"paused"`
	At     time.Time `json:"at"`
	// By says who paused or resumed it ("pacsd pause on archive1").
	By string `json:"by,omitempty"`
}
