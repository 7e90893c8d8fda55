package reconcile

import "time"

// Request is a maintenance command ('pacsd restart', 'reinit', 'failover')
// asked for on the command line with pacsd on every host, where only the
// pacsd of a node's host drives that host's engine: the command line keeps
// it in the cluster store, the pacsd that must carry it out (RequestHost)
// takes it, carries it out with the same executor as with one controller
// (RestartNode, Reinit, FailoverByHand), and writes its progress and
// result into it for the command line to print. It holds no secret.
type Request struct {
	ID      string `json:"id"`
	Cluster string `json:"cluster"`
	// Command is CommandRestart, CommandReinit or CommandFailover, on Node.
	Command string `json:"command"`
	Node    string `json:"node"`
	// Host is the host whose pacsd carries it out; with Leader, the pacsd
	// that leads the cluster does, wherever it runs.
	Host   string `json:"host,omitempty"`
	Leader bool   `json:"leader,omitempty"`
	// Restart, Rebuild and Failover are the command's options.
	Restart  RestartQuery  `json:"restart"`
	Rebuild  ReinitQuery   `json:"rebuild"`
	Failover ManualOptions `json:"failover"`
	// By says who asked; At is when.
	By string    `json:"by"`
	At time.Time `json:"at"`

	// What the pacsd that carries it out writes.
	State string `json:"state"`
	// TakenBy is the host whose pacsd took it; Beat when it last said it
	// still works on it.
	TakenBy string    `json:"taken_by,omitempty"`
	Beat    time.Time `json:"beat,omitempty"`
	// Lines are what it said so far (the newest RequestLines), oldest
	// first; Said counts every line it ever said.
	Lines []string `json:"lines,omitempty"`
	Said  int      `json:"said,omitempty"`
	// Error is why it failed, Refused set when it was refused before
	// anything changed; both empty when it succeeded.
	Error   string `json:"error,omitempty"`
	Refused bool   `json:"refused,omitempty"`
	// The result of each command.
	Restarted  *RestartDone `json:"restarted,omitempty"`
	Reinit     *ReinitDone  `json:"reinit,omitempty"`
	PromotedTo string       `json:"promoted_to,omitempty"`
}

// The states of a Request.
const (
	// RequestAsked: kept, not taken yet.
	RequestAsked = "asked"
	// RequestRunning: taken by the pacsd of TakenBy, under way.
	RequestRunning = "running"
	// RequestDone: over; Error says whether it succeeded.
	RequestDone = "done"
)

// RequestLines is how many lines of progress a Request keeps.
const RequestLines = 40

// Say adds line to r's progress, keeping the newest RequestLines.
func (r *Request) Say(line string) {
	r.Lines = append(r.Lines, line)
	r.Said++
	if len(r.Lines) > RequestLines {
		r.Lines = append([]string(nil), r.Lines[len(r.Lines)-RequestLines:]...)
	}
}

// NewLines returns the lines of r that follow the first seen lines said
// (Said as last read): the newest, when more were said than r keeps.
func (r Request) NewLines(seen int) []string {
	n := min(max(r.Said-seen, 0), len(r.Lines))
	return r.Lines[len(r.Lines)-n:]
}
