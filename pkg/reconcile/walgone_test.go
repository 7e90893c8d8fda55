package reconcile

import "testing"

// TestWALGone: a standby is rebuilt only when it runs, does not stream, has
// asked for WAL the primary no longer has and has no archive to read from.
func TestWALGone(t *testing.T) {
	primary := func(edit func(*DBState)) *DBState {
		db := &DBState{OldestWAL: 0x7000000}
		if edit != nil {
			edit(db)
		}
		return db
	}
	standby := func(edit func(*DBState)) *DBState {
		db := &DBState{InRecovery: true, Receiver: "waiting", ReceivedWAL: 0x5000000,
			Settings: map[string]Setting{"restore_command": {Value: ""}}}
		if edit != nil {
			edit(db)
		}
		return db
	}
	for _, tc := range []struct {
		name             string
		primary, standby *DBState
		want             bool
	}{
		{"asks for WAL before the oldest kept", primary(nil), standby(nil), true},
		{"asks for the oldest segment kept", primary(nil), standby(func(d *DBState) { d.ReceivedWAL = 0x7000000 }), false},
		{"asks for WAL after the oldest kept", primary(nil), standby(func(d *DBState) { d.ReceivedWAL = 0x9000000 }), false},
		{"has not asked yet (replaying its own WAL)", primary(nil), standby(func(d *DBState) { d.ReceivedWAL = 0 }), false},
		{"streams (seen by the primary)", primary(func(d *DBState) { d.Streaming = []string{"db2"} }), standby(nil), false},
		{"streams (its receiver)", primary(nil), standby(func(d *DBState) { d.Receiver = "streaming" }), false},
		{"reads an archive", primary(nil), standby(func(d *DBState) { d.Settings["restore_command"] = Setting{Value: "cp /archive/%f %p"} }), false},
		{"restore_command not read", primary(nil), standby(func(d *DBState) { d.Settings = nil }), false},
		{"oldest WAL not read", primary(func(d *DBState) { d.OldestWAL = 0 }), standby(nil), false},
		{"the primary is in recovery", primary(func(d *DBState) { d.InRecovery = true }), standby(nil), false},
		{"the standby is not in recovery", primary(nil), standby(func(d *DBState) { d.InRecovery = false }), false},
		{"the primary not reached", nil, standby(nil), false},
		{"the standby not reached", primary(nil), nil, false},
	} {
		if got := WALGone(tc.primary, tc.standby, "db2"); got != tc.want {
			t.Errorf("%s: WALGone = %v, want %v", tc.name, got, tc.want)
		}
	}
}
