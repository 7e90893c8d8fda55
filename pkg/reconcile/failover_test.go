package reconcile

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// standby is the health of a streaming standby that has received up to wal.
func standby(node string, wal uint64) StandbyHealth {
	return StandbyHealth{Node: node, DB: &DBState{InRecovery: true, ReceivedWAL: wal, WAL: wal}}
}

func TestChooseFailoverTarget(t *testing.T) {
	const mb = 1 << 20
	async := "failover {\n automatic = true\n max_lag = \"16MB\"\n }"
	const sync = "synchronous" // the same cluster with synchronous replication
	seen := func(wal uint64, sync ...string) LastSeen {
		return LastSeen{Node: "db1", WAL: wal, SyncStandbys: sync, At: time.Unix(1e9, 0), LostAt: time.Unix(1e9, 0).Add(150 * time.Millisecond)}
	}
	tests := []struct {
		name    string
		extra   string
		last    LastSeen
		health  []StandbyHealth
		want    string
		refused []string // substrings, one per refused standby, in node order
	}{
		{name: "most WAL wins", extra: async, last: seen(100 * mb),
			health: []StandbyHealth{standby("db2", 99*mb), standby("db3", 100*mb)}, want: "db3"},
		{name: "same position: the first declared", extra: async, last: seen(100 * mb),
			health: []StandbyHealth{standby("db2", 100*mb), standby("db3", 100*mb)}, want: "db2"},
		{name: "one beyond max_lag", extra: async, last: seen(100 * mb),
			health: []StandbyHealth{standby("db2", 50*mb), standby("db3", 90*mb)}, want: "db3",
			refused: []string{"db2: 52428800 bytes behind"}},
		{name: "all beyond max_lag", extra: async, last: seen(100 * mb),
			health:  []StandbyHealth{standby("db2", 50*mb), standby("db3", 10*mb)},
			refused: []string{"db2: 52428800 bytes behind", "db3: 94371840 bytes behind"}},
		{name: "unknown last position, asynchronous: nobody", extra: async, last: seen(0),
			health:  []StandbyHealth{standby("db2", 100*mb), standby("db3", 1)},
			refused: []string{"db2: the primary's last WAL position is unknown", "db3: the primary's last WAL position is unknown"}},
		{name: "nothing known of the primary: nobody", extra: async, last: LastSeen{},
			health:  []StandbyHealth{standby("db2", 100*mb)},
			refused: []string{"db2: the primary's last WAL position is unknown", "db3: it was not checked"}},
		{name: "synchronous: only a synchronous standby", extra: sync, last: seen(100*mb, "db3"),
			health: []StandbyHealth{standby("db2", 100*mb), standby("db3", 99*mb)}, want: "db3",
			refused: []string{"db2: it was not a synchronous standby"}},
		{name: "synchronous, no sight of the primary: nobody", extra: sync, last: seen(0),
			health:  []StandbyHealth{standby("db2", 100*mb), standby("db3", 100*mb)},
			refused: []string{"db2: it was not a synchronous standby", "db3: it was not a synchronous standby"}},
		{name: "synchronous but beyond max_lag", extra: sync, last: seen(100*mb, "db2", "db3"),
			health: []StandbyHealth{standby("db2", 10*mb), standby("db3", 99*mb)}, want: "db3",
			refused: []string{"db2: 94371840 bytes behind"}},
		{name: "unreachable standby", extra: async, last: seen(100 * mb),
			health: []StandbyHealth{{Node: "db2", Err: errors.New("its container does not run")}, standby("db3", 95*mb)}, want: "db3",
			refused: []string{"db2: its container does not run"}},
		{name: "a standby that is not in recovery", extra: async, last: seen(100 * mb),
			health: []StandbyHealth{{Node: "db2", DB: &DBState{WAL: 200 * mb}}, standby("db3", 100*mb)}, want: "db3",
			refused: []string{"db2: it is not in recovery"}},
		{name: "ahead of the last sight (it kept receiving)", extra: async, last: seen(100 * mb),
			health: []StandbyHealth{standby("db2", 120*mb), standby("db3", 100*mb)}, want: "db2"},
		{name: "received but not replayed counts", extra: async, last: seen(100 * mb),
			health: []StandbyHealth{{Node: "db2", DB: &DBState{InRecovery: true, ReceivedWAL: 100 * mb, WAL: 1}}, standby("db3", 90*mb)}, want: "db2"},
		{name: "sight older than SightTolerance: position unknown", extra: async,
			last:    LastSeen{Node: "db1", WAL: 100 * mb, At: time.Unix(1e9, 0), LostAt: time.Unix(1e9, 0).Add(4 * time.Second)},
			health:  []StandbyHealth{standby("db2", 99*mb), standby("db3", 1*mb)},
			refused: []string{"db2: the primary's last WAL position is unknown (pacsd last saw it healthy 4s before", "db3: the primary's last WAL position is unknown"}},
		{name: "synchronous: a synchronous standby cannot be checked", extra: sync, last: seen(100*mb, "db2", "db3"),
			health:  []StandbyHealth{{Node: "db2", Err: errors.New("its container does not run")}, standby("db3", 100*mb)},
			refused: []string{`the synchronous standby "db2" cannot be checked`}},
		{name: "synchronous: a stale sight skips only the lag check", extra: sync,
			last:   LastSeen{Node: "db1", WAL: 100 * mb, SyncStandbys: []string{"db3"}, At: time.Unix(1e9, 0), LostAt: time.Unix(1e9, 0).Add(time.Minute)},
			health: []StandbyHealth{standby("db2", 100*mb), standby("db3", 10*mb)}, want: "db3",
			refused: []string{"db2: it was not a synchronous standby"}},
		{name: "exactly max_lag behind qualifies", extra: async, last: seen(100 * mb),
			health: []StandbyHealth{standby("db2", 84*mb), standby("db3", 83*mb)}, want: "db2",
			refused: []string{"db3: 17825792 bytes behind"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCluster(t, async)
			c.Replication.Synchronous = tt.extra == sync
			ch := ChooseFailoverTarget(c, "db1", tt.last, tt.health)
			if ch.To != tt.want {
				t.Errorf("chose %q, want %q (refused: %q)", ch.To, tt.want, ch.Refused)
			}
			if len(ch.Refused) != len(tt.refused) {
				t.Fatalf("refused %q, want %d reasons like %q", ch.Refused, len(tt.refused), tt.refused)
			}
			for i, want := range tt.refused {
				if !strings.Contains(ch.Refused[i], want) {
					t.Errorf("refusal %d: %q, want it to contain %q", i, ch.Refused[i], want)
				}
			}
		})
	}
}
