package reconcile

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"
)

// Fakes embed the interface they stand for: a call they do not expect
// panics (a nil method), so a test sees every side effect.
type fakeRuntime struct {
	Runtime
	ct *ContainerState
}

func (f *fakeRuntime) ContainerInspect(context.Context, string, string, string) (*ContainerState, error) {
	return f.ct, nil
}

type fakeDB struct {
	st  *DBState
	err error
}

func (f *fakeDB) Connect(context.Context, string, string, spec.Secret, string) (DBConn, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &fakeConn{st: f.st}, nil
}

type fakeConn struct {
	DBConn
	st *DBState
}

func (f *fakeConn) State(context.Context) (*DBState, error) { return f.st, nil }
func (f *fakeConn) Close()                                  {}

// TestWaitStarted: a started standby that answers but does not stream holds
// the pass (and the cluster's lock) only for StreamTimeout, then the pass
// goes on with a warning; a server that never answers is an error after
// ReadyTimeout; a streaming standby is ready at once.
func TestWaitStarted(t *testing.T) {
	c := testCluster(t, "")
	defer func(r, s time.Duration) { ReadyTimeout, StreamTimeout = r, s }(ReadyTimeout, StreamTimeout)
	ReadyTimeout, StreamTimeout = 300*time.Millisecond, 300*time.Millisecond
	rt := &fakeRuntime{ct: &ContainerState{Running: true, Addr: "192.0.2.1:5432"}}
	run := func(db *fakeDB) (time.Duration, string, error) {
		var log bytes.Buffer
		x := &executor{c: c, d: Deps{DB: db, Store: testStore}, log: slog.New(slog.NewTextHandler(&log, nil)), acting: "db1"}
		start := time.Now()
		err := x.waitStarted(context.Background(), rt, "db2")
		return time.Since(start), log.String(), err
	}

	took, log, err := run(&fakeDB{st: &DBState{InRecovery: true, Receiver: "waiting"}})
	if err != nil || took < StreamTimeout || took > 5*StreamTimeout || !strings.Contains(log, "not streaming yet") {
		t.Errorf("not streaming: got %v after %s, log %q; want nil after about %s and a warning", err, took, log, StreamTimeout)
	}
	_, _, err = run(&fakeDB{err: errors.New("connection refused")})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("never answers: got %v, want an error with the cause", err)
	}
	took, _, err = run(&fakeDB{st: &DBState{InRecovery: true, Receiver: "streaming"}})
	if err != nil || took > 100*time.Millisecond {
		t.Errorf("streaming: got %v after %s, want nil at once", err, took)
	}
}
