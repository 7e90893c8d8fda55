package watch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testDebounce is short so that tests are quick, and long enough that a tight
// loop of writes falls well inside it even under the race detector.
const testDebounce = 50 * time.Millisecond

// timeout bounds every wait for something that must happen.
const timeout = 5 * time.Second

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// testLogger writes to the test's log, so a failing test shows what the
// watcher saw.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

type fixture struct {
	t    *testing.T
	dir  string
	path string
	trig *Trigger
	w    *Watcher
}

// start creates dir/config.hcl with content (unless setup is given, which
// then prepares the directory), starts a Watcher on it and waits until the
// watcher has checked the file once.
func start(t *testing.T, content string, setup func(dir string)) *fixture {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.hcl")
	if setup != nil {
		setup(dir)
	} else {
		write(t, path, content)
	}
	trig := NewTrigger()
	w, err := New(path, trig, Options{Debounce: testDebounce, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	w.retry = 10 * time.Millisecond
	w.started = make(chan struct{})
	w.checked = make(chan struct{}, 1000)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var runErr error
	go func() {
		defer wg.Done()
		runErr = w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if runErr != nil {
			t.Errorf("Run: %v", runErr)
		}
	})
	select {
	case <-w.started:
	case <-time.After(timeout):
		t.Fatal("the watcher did not start")
	}
	f := &fixture{t: t, dir: dir, path: path, trig: trig, w: w}
	f.drainChecks()
	return f
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// drainChecks forgets the checks done so far.
func (f *fixture) drainChecks() {
	for {
		select {
		case <-f.w.checked:
		default:
			return
		}
	}
}

// waitCheck waits for the next check of the file.
func (f *fixture) waitCheck() {
	f.t.Helper()
	select {
	case <-f.w.checked:
	case <-time.After(timeout):
		f.t.Fatal("the file was not checked")
	}
}

// waitPoke waits for pokes until the checksum is want: a poke for an
// intermediate state (truncated, half written) may come before the last one.
// Checksum is updated before the poke, so it is read after each receive.
func (f *fixture) waitPoke(want string) {
	f.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case <-f.trig.C():
			if got := f.w.Checksum(); got == want {
				f.drainChecks() // those checks are this change's
				return
			}
		case <-deadline:
			f.t.Fatalf("no poke with checksum %q; last seen %q", want, f.w.Checksum())
		}
	}
}

// noPoke requires that no poke is pending.
func (f *fixture) noPoke() {
	f.t.Helper()
	select {
	case <-f.trig.C():
		f.t.Fatalf("unexpected poke; checksum %q", f.w.Checksum())
	default:
	}
}

func TestNewRejects(t *testing.T) {
	log := testLogger(t)
	for name, tc := range map[string]struct {
		path string
		trig *Trigger
		o    Options
	}{
		"empty path":        {"", NewTrigger(), Options{Logger: log}},
		"nil trigger":       {"x.hcl", nil, Options{Logger: log}},
		"nil logger":        {"x.hcl", NewTrigger(), Options{}},
		"negative debounce": {"x.hcl", NewTrigger(), Options{Logger: log, Debounce: -1}},
	} {
		if _, err := New(tc.path, tc.trig, tc.o); err == nil {
			t.Errorf("%s: New returned no error", name)
		}
	}
}

func TestNewRecordsChecksum(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.hcl")
	write(t, path, "a")
	w, err := New(path, NewTrigger(), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sum([]byte("a")), w.Checksum()); diff != "" {
		t.Errorf("Checksum (-want +got):\n%s", diff)
	}
	if w.debounce != DefaultDebounce {
		t.Errorf("debounce = %v, want %v", w.debounce, DefaultDebounce)
	}
	w, err = New(filepath.Join(dir, "missing.hcl"), NewTrigger(), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Checksum(); got != "" {
		t.Errorf("Checksum of a missing file = %q, want \"\"", got)
	}
}

func TestChangeBetweenNewAndRunPokes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.hcl")
	write(t, path, "a")
	trig := NewTrigger()
	w, err := New(path, trig, Options{Debounce: testDebounce, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, "b")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-trig.C():
	case <-time.After(timeout):
		t.Fatal("no poke for a change made before Run")
	}
	if diff := cmp.Diff(sum([]byte("b")), w.Checksum()); diff != "" {
		t.Errorf("Checksum (-want +got):\n%s", diff)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestWriteInPlace(t *testing.T) {
	f := start(t, "cluster \"a\" {}\n", nil)
	// Same length, different bytes, no truncation.
	writeAt(t, f.path, 9, "b")
	f.waitPoke(sum([]byte("cluster \"b\" {}\n")))
}

func TestTruncateThenWrite(t *testing.T) {
	f := start(t, "old content\n", nil)
	if err := os.Truncate(f.path, 0); err != nil {
		t.Fatal(err)
	}
	writeAt(t, f.path, 0, "new content\n")
	f.waitPoke(sum([]byte("new content\n")))
}

func TestEmptyFilePokes(t *testing.T) {
	f := start(t, "content\n", nil)
	write(t, f.path, "")
	f.waitPoke(sum(nil))
}

func TestRenameOver(t *testing.T) {
	f := start(t, "one\n", nil)
	// vim's way: keep a backup by renaming, write anew; emacs and most
	// others: write a temporary file and rename it over the original.
	tmp := filepath.Join(f.dir, ".config.hcl.swp")
	write(t, tmp, "two\n")
	if err := os.Rename(tmp, f.path); err != nil {
		t.Fatal(err)
	}
	f.waitPoke(sum([]byte("two\n")))

	if err := os.Rename(f.path, f.path+"~"); err != nil {
		t.Fatal(err)
	}
	write(t, f.path, "three\n")
	f.waitPoke(sum([]byte("three\n")))
}

func TestDeleteThenRecreate(t *testing.T) {
	f := start(t, "content\n", nil)
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
	f.waitPoke("")
	write(t, f.path, "content\n")
	f.waitPoke(sum([]byte("content\n")))
}

func TestMissingFileAtStart(t *testing.T) {
	f := start(t, "", func(string) {})
	if got := f.w.Checksum(); got != "" {
		t.Fatalf("Checksum = %q, want \"\"", got)
	}
	f.noPoke()
	write(t, f.path, "x")
	f.waitPoke(sum([]byte("x")))
}

// TestConfigMapSwap reproduces a Kubernetes ConfigMap volume: config.hcl is
// a symlink to ..data/config.hcl and ..data a symlink to a timestamped
// directory, swapped atomically by renaming a new symlink over ..data.
func TestConfigMapSwap(t *testing.T) {
	f := start(t, "", func(dir string) {
		mkdata(t, dir, "..v1", "one\n")
		must(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
		must(t, os.Symlink(filepath.Join("..data", "config.hcl"), filepath.Join(dir, "config.hcl")))
	})
	if diff := cmp.Diff(sum([]byte("one\n")), f.w.Checksum()); diff != "" {
		t.Fatalf("Checksum (-want +got):\n%s", diff)
	}
	mkdata(t, f.dir, "..v2", "two\n")
	must(t, os.Symlink("..v2", filepath.Join(f.dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(f.dir, "..data_tmp"), filepath.Join(f.dir, "..data")))
	must(t, os.RemoveAll(filepath.Join(f.dir, "..v1")))
	f.waitPoke(sum([]byte("two\n")))

	// Another swap to identical content: no poke.
	mkdata(t, f.dir, "..v3", "two\n")
	must(t, os.Symlink("..v3", filepath.Join(f.dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(f.dir, "..data_tmp"), filepath.Join(f.dir, "..data")))
	f.waitCheck()
	f.noPoke()
}

// TestSymlinkSwap swaps the file's own symlink as `ln -sf` does, then edits
// the new target, which lies in another directory.
func TestSymlinkSwap(t *testing.T) {
	other := t.TempDir()
	a := filepath.Join(other, "a.hcl")
	b := filepath.Join(other, "b.hcl")
	write(t, a, "a\n")
	write(t, b, "b\n")
	f := start(t, "", func(dir string) {
		must(t, os.Symlink(a, filepath.Join(dir, "config.hcl")))
	})
	tmp := filepath.Join(f.dir, "config.hcl.tmp")
	must(t, os.Symlink(b, tmp))
	must(t, os.Rename(tmp, f.path))
	f.waitPoke(sum([]byte("b\n")))

	// The target is edited where it lies.
	write(t, b, "b2\n")
	f.waitPoke(sum([]byte("b2\n")))

	// The old target is no longer of interest.
	write(t, a, "a2\n")
	f.waitCheckOrQuiet()
	f.noPoke()

	// Unlink and link again, the other way `ln -sf` may do it.
	must(t, os.Remove(f.path))
	must(t, os.Symlink(a, f.path))
	f.waitPoke(sum([]byte("a2\n")))
}

// waitCheckOrQuiet waits for a check or, since an event that is not the
// file's causes none, for a few debounce periods of quiet.
func (f *fixture) waitCheckOrQuiet() {
	select {
	case <-f.w.checked:
	case <-time.After(3 * testDebounce):
	}
}

func TestTouchDoesNotPoke(t *testing.T) {
	f := start(t, "content\n", nil)
	now := time.Now().Add(time.Minute)
	must(t, os.Chtimes(f.path, now, now))
	f.waitCheck()
	f.noPoke()
}

func TestChmodDoesNotPoke(t *testing.T) {
	f := start(t, "content\n", nil)
	must(t, os.Chmod(f.path, 0o600))
	f.waitCheck()
	f.noPoke()
}

func TestSameBytesDoNotPoke(t *testing.T) {
	f := start(t, "content\n", nil)
	write(t, f.path, "content\n")
	f.waitCheck()
	f.noPoke()
	// Saved the editor's way, still the same bytes.
	tmp := filepath.Join(f.dir, ".config.hcl.tmp")
	write(t, tmp, "content\n")
	must(t, os.Rename(tmp, f.path))
	f.waitCheck()
	f.noPoke()
}

func TestOtherFilesDoNotPoke(t *testing.T) {
	f := start(t, "content\n", nil)
	write(t, filepath.Join(f.dir, "other.hcl"), "x")
	write(t, filepath.Join(f.dir, "config.hcl.bak"), "y")
	f.waitCheckOrQuiet()
	f.noPoke()
	if n := len(f.w.checked); n != 0 {
		t.Errorf("%d checks for events of other files, want 0", n)
	}
}

func TestBurstYieldsOnePoke(t *testing.T) {
	f := start(t, "v0\n", nil)
	var last string
	begin := time.Now()
	for i := range 20 {
		last = "v" + string(rune('a'+i)) + "\n"
		write(t, f.path, last)
	}
	if d := time.Since(begin); d >= testDebounce {
		t.Skipf("the burst took %v, not within the debounce of %v", d, testDebounce)
	}
	f.waitCheck()
	select {
	case <-f.trig.C():
	default:
		t.Fatal("no poke after the burst")
	}
	if diff := cmp.Diff(sum([]byte(last)), f.w.Checksum()); diff != "" {
		t.Errorf("Checksum (-want +got):\n%s", diff)
	}
	// Nothing more: no second check, no second poke.
	select {
	case <-f.w.checked:
		t.Error("a second check after the burst")
	case <-time.After(3 * testDebounce):
	}
	f.noPoke()
}

func TestDirectoryRemovedAndRecreated(t *testing.T) {
	f := start(t, "content\n", nil)
	must(t, os.RemoveAll(f.dir))
	f.waitPoke("")
	must(t, os.Mkdir(f.dir, 0o755))
	write(t, f.path, "again\n")
	f.waitPoke(sum([]byte("again\n")))
	// Watched again: later edits are seen.
	write(t, f.path, "later\n")
	f.waitPoke(sum([]byte("later\n")))
}

func TestDirectoryRenamedAway(t *testing.T) {
	f := start(t, "content\n", nil)
	must(t, os.Rename(f.dir, f.dir+".old"))
	t.Cleanup(func() { os.RemoveAll(f.dir + ".old") })
	f.waitPoke("")
	// Edits in the moved directory are not the file's.
	write(t, filepath.Join(f.dir+".old", "config.hcl"), "moved\n")
	must(t, os.Mkdir(f.dir, 0o755))
	write(t, f.path, "new\n")
	f.waitPoke(sum([]byte("new\n")))
}

func TestDirectoryMissingAtStart(t *testing.T) {
	f := start(t, "", func(dir string) { must(t, os.Remove(dir)) })
	must(t, os.Mkdir(f.dir, 0o755))
	write(t, f.path, "x")
	f.waitPoke(sum([]byte("x")))
}

func TestRunFailsWhenDirectoryIsAFile(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	write(t, notDir, "")
	w, err := New(filepath.Join(notDir, "sub", "config.hcl"), NewTrigger(), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := w.Run(ctx); err == nil {
		t.Error("Run returned nil for a path below a regular file")
	}
}

// writeAt writes content at offset off of the existing file at path, in
// place: no truncation, no new inode.
func writeAt(t *testing.T, path string, off int64, content string) {
	t.Helper()
	file, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteAt([]byte(content), off); err != nil {
		t.Fatal(err)
	}
	must(t, file.Close())
}

func mkdata(t *testing.T, dir, name, content string) {
	t.Helper()
	must(t, os.Mkdir(filepath.Join(dir, name), 0o755))
	write(t, filepath.Join(dir, name, "config.hcl"), content)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
