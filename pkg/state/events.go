package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// trimCheckEvery is how much an events file grows between two counts of its
// lines: an append that makes it cross a multiple of this size counts them,
// and rewrites the file with the newest reconcile.EventsKept events when it
// holds more than twice as many. Counting on every append would read the
// whole file each time.
const trimCheckEvery = 16 << 10

// eventsPath is the file of cluster's event history: one JSON event a line,
// oldest first.
func (s *Store) eventsPath(cluster string) (string, error) {
	if !safeName.MatchString(cluster) {
		return "", fmt.Errorf("cluster name %q cannot name an events file", cluster)
	}
	return filepath.Join(s.Dir, "events-"+cluster+".jsonl"), nil
}

// AppendEvent adds e to the event history of its cluster (e.Cluster): one
// line appended to events-CLUSTER.jsonl in the state directory (mode 0600),
// in a single write, so that the lines of two pacsd processes never mix. It
// does not sync the file: an event lost in a crash is not worth an fsync per
// action. The file is bounded: its lines are counted each time it grows by
// 16 KiB, and once it holds more than twice reconcile.EventsKept, it is
// rewritten atomically with the newest reconcile.EventsKept.
func (s *Store) AppendEvent(e reconcile.Event) error {
	p, err := s.eventsPath(e.Cluster)
	if err != nil {
		return err
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("while encoding an event of cluster %q: %w", e.Cluster, err)
	}
	line = append(line, '\n')
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("while creating the state directory %s for the events of cluster %q: %w", s.Dir, e.Cluster, err)
	}
	size, err := appendLine(p, line)
	if err != nil {
		return fmt.Errorf("while recording an event of cluster %q in %s: %w; make sure the state directory %s is writable and its file system has free space", e.Cluster, p, err, s.Dir)
	}
	if before := size - int64(len(line)); before/trimCheckEvery != size/trimCheckEvery {
		if err := s.trimEvents(p); err != nil {
			return fmt.Errorf("while trimming the events of cluster %q in %s to the newest %d: %w", e.Cluster, p, reconcile.EventsKept, err)
		}
	}
	return nil
}

// appendLine appends line to the file at p (created 0600, never through a
// symbolic link) in one write, under an exclusive flock on the file, which
// trimEvents' rewrite takes too: a line is never appended to a file that a
// rewrite replaced meanwhile, and the end of a line cut short is seen as it
// is. It returns the file's size after the write.
func appendLine(p string, line []byte) (int64, error) {
	for try := 0; ; try++ {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
		if err != nil {
			return 0, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return 0, err
		}
		if err := ownLikeDir(f, filepath.Dir(p)); err != nil {
			f.Close()
			return 0, err
		}
		// A rewrite replaced the file while this one waited for the lock:
		// append to the new one (after a few tries, to this one anyway).
		if !sameFile(f, p) && try < 3 {
			f.Close()
			continue
		}
		size, err := appendTo(f, line)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return size, err
	}
}

// appendTo writes line at the end of f, which is open for reading and
// appending, and returns f's size afterwards.
func appendTo(f *os.File, line []byte) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("it is not a regular file (%v); remove it", fi.Mode().Type())
	}
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			return 0, err
		}
	}
	// A line cut short by a crash gets its own line: the new event does
	// not end it.
	if fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	n, err := f.Write(line)
	if err == nil && n != len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return 0, err
	}
	fi, err = f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// trimEvents rewrites the events file at p with its newest
// reconcile.EventsKept lines when it holds more than twice as many,
// atomically (a temporary file, fsync, rename), holding an exclusive flock
// on the old file so that no append is lost in it.
func (s *Store) trimEvents(p string) error {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close() // releases the lock
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	if !sameFile(f, p) {
		return nil // another process rewrote it meanwhile
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	lines := nonEmptyLines(b)
	if len(lines) <= 2*reconcile.EventsKept {
		return nil
	}
	var out bytes.Buffer
	for _, l := range lines[len(lines)-reconcile.EventsKept:] {
		out.Write(l)
		out.WriteByte('\n')
	}
	return replaceFile(s.Dir, ".events-*.tmp", p, out.Bytes())
}

// nonEmptyLines splits b into its lines, without the empty ones.
func nonEmptyLines(b []byte) [][]byte {
	var lines [][]byte
	for l := range bytes.SplitSeq(b, []byte{'\n'}) {
		if len(bytes.TrimSpace(l)) > 0 {
			lines = append(lines, l)
		}
	}
	return lines
}

// Events returns the event history of cluster from since on (the zero time:
// all of it), oldest first: the newest reconcile.EventsKept at most. A line
// that holds no event (one cut short by a crash while it was written) is
// skipped.
func (s *Store) Events(cluster string, since time.Time) ([]reconcile.Event, error) {
	p, err := s.eventsPath(cluster)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while reading the events of cluster %q: %w", cluster, err)
	}
	var evs []reconcile.Event
	for _, l := range nonEmptyLines(b) {
		var e reconcile.Event
		if json.Unmarshal(l, &e) != nil {
			continue
		}
		evs = append(evs, e)
	}
	return newestSince(evs, since), nil
}

// newestSince returns the events of evs from since on (all for the zero
// time), oldest first, the newest reconcile.EventsKept at most.
func newestSince(evs []reconcile.Event, since time.Time) []reconcile.Event {
	out := evs[:0]
	for _, e := range evs {
		if since.IsZero() || !e.At.Before(since) {
			out = append(out, e)
		}
	}
	// Appended in the order they happened, unless two processes appended
	// at once.
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	if len(out) > reconcile.EventsKept {
		out = out[len(out)-reconcile.EventsKept:]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
