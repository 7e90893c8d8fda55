package reconcile

import (
	"encoding/binary"
	"fmt"
)

// ControlPath is PostgreSQL's control file in PGDATA.
const ControlPath = PGDATA + "/global/pg_control"

// ClusterDBState is the "Database cluster state" of a control file.
type ClusterDBState int32

// The states a control file records (DBState in PostgreSQL's pg_control.h).
const (
	DBStartup ClusterDBState = iota
	DBShutdowned
	DBShutdownedInRecovery
	DBShutdowning
	DBInCrashRecovery
	DBInArchiveRecovery
	DBInProduction
)

var dbStateNames = [...]string{"starting up", "shut down", "shut down in recovery", "shutting down",
	"in crash recovery", "in archive recovery", "in production"}

func (s ClusterDBState) String() string {
	if s >= 0 && int(s) < len(dbStateNames) {
		return dbStateNames[s]
	}
	return fmt.Sprintf("unknown state %d", int32(s))
}

// Control is what pacsd reads of a data directory's control file.
type Control struct {
	State ClusterDBState
	// Checkpoint is the position of the latest checkpoint record.
	Checkpoint uint64
	// Timeline is the timeline of the latest checkpoint.
	Timeline uint32
}

// WasPrimary reports whether the data was last run as a primary: a server
// that was in production (running or crashed) or shut down as a primary. Such
// data must be rewound before it may follow another primary.
func (c Control) WasPrimary() bool {
	switch c.State {
	case DBShutdowned, DBShutdowning, DBInProduction, DBInCrashRecovery:
		return true
	}
	return false
}

// ParseControl reads the head of a pg_control file, whose layout is the same
// in every supported version (12 and newer): system identifier, control and
// catalog versions, state, time, checkpoint position, then the checkpoint's
// copy with its redo position and timeline. It assumes a little-endian
// server, as on every platform the image runs on.
func ParseControl(b []byte) (Control, error) {
	if len(b) < 52 {
		return Control{}, fmt.Errorf("pg_control is %d bytes, too short", len(b))
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[8:]); v < 1100 || v > 9999 {
		return Control{}, fmt.Errorf("pg_control version %d is not one pacsd reads (PostgreSQL 12 and newer, little-endian)", v)
	}
	return Control{
		State:      ClusterDBState(int32(le.Uint32(b[16:]))),
		Checkpoint: le.Uint64(b[32:]),
		Timeline:   le.Uint32(b[48:]),
	}, nil
}

// FormatLSN prints a WAL position the way PostgreSQL does (0/155F238).
func FormatLSN(l uint64) string { return fmt.Sprintf("%X/%X", l>>32, uint32(l)) }
