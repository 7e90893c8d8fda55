package reconcile

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
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

// ParseLSN reads a WAL position as PostgreSQL prints it ("16/B374D848").
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not a WAL position", s)
	}
	return h<<32 | l, nil
}

// ParseHistory reads a timeline history file (pg_wal/NNNNNNNN.history): for
// each earlier timeline, the WAL position where the next one forked from it.
// Comments and blank lines are skipped; a malformed line is an error.
func ParseHistory(b []byte) (map[int64]uint64, error) {
	forks := map[int64]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		tli, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || len(f) < 2 {
			return nil, fmt.Errorf("timeline history: line %q is not <timeline> <position> ...", line)
		}
		lsn, err := ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("timeline history: %w", err)
		}
		forks[tli] = lsn
	}
	return forks, nil
}

// FormatLSN prints a WAL position the way PostgreSQL does (0/155F238).
func FormatLSN(l uint64) string { return fmt.Sprintf("%X/%X", l>>32, uint32(l)) }
