package daemon

import (
	"fmt"
	"sort"
	"time"
)

// Status is what /status reports.
type Status struct {
	// File is the topology file and the checksum of its last good content.
	File     string    `json:"file"`
	Checksum string    `json:"checksum"`
	LoadedAt time.Time `json:"loaded_at"`
	// ReloadError says why the last content saved was refused; "" when it was taken.
	ReloadError string `json:"reload_error,omitempty"`
	// Passed is set once the first pass has ended.
	Passed   bool                      `json:"passed"`
	Clusters map[string]*ClusterStatus `json:"clusters"`
}

// ClusterStatus is the outcome of a cluster's last pass.
type ClusterStatus struct {
	LastPass time.Time `json:"last_pass"`
	Duration string    `json:"duration"`
	Result   string    `json:"result"` // ok or error
	Error    string    `json:"error,omitempty"`
	Actions  []string  `json:"actions"`
	// Failures counts failed passes in a row; RetryAt is when the next one
	// may run (backoff).
	Failures int        `json:"failures,omitempty"`
	RetryAt  *time.Time `json:"retry_at,omitempty"`
}

// Status returns a copy of the daemon's status.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st
	st.Clusters = make(map[string]*ClusterStatus, len(d.st.Clusters))
	for name, cs := range d.st.Clusters {
		c := *cs
		st.Clusters[name] = &c
	}
	return st
}

// notReady lists why the daemon is not ready; none when it is.
func (d *Daemon) notReady() []string {
	st := d.Status()
	if !st.Passed {
		return []string{"the first pass has not ended yet"}
	}
	var reasons []string
	for name, cs := range st.Clusters {
		if cs.Result != "ok" {
			reasons = append(reasons, fmt.Sprintf("cluster %q: last pass failed: %s", name, cs.Error))
		}
	}
	sort.Strings(reasons)
	return reasons
}
