package watch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is the quiet period used when Options.Debounce is zero.
const DefaultDebounce = 100 * time.Millisecond

// maxWaitFactor bounds the debounce: a check runs at the latest this many
// debounce periods after the first event of a burst.
const maxWaitFactor = 10

// defaultRetry is how often a Watcher tries again to watch a directory that is
// missing.
const defaultRetry = time.Second

// Options configure a Watcher.
type Options struct {
	// Debounce is how long the file's directory must be quiet after a
	// relevant event before the file is read. Zero means DefaultDebounce;
	// negative is an error.
	Debounce time.Duration
	// Logger receives debug lines per event and info lines per change of
	// checksum. Required.
	Logger *slog.Logger
}

// Watcher watches one file through its directory, debounces bursts of
// events and pokes a Trigger when the SHA-256 of the file's content differs
// from the last one it saw. See the package documentation for the events it
// understands. Its methods are safe for concurrent use; Run must be called
// at most once.
type Watcher struct {
	path     string // absolute, cleaned
	dir      string // filepath.Dir(path)
	trigger  *Trigger
	log      *slog.Logger
	debounce time.Duration
	retry    time.Duration

	mu  sync.Mutex
	sum string

	// Test hooks, nil in production: started is closed once Run watches the
	// directory (or has given it up for retrying) and has checked the file
	// once; checked receives (without blocking) after every check.
	started chan struct{}
	checked chan struct{}
}

// New returns a Watcher of the file at path (made absolute) that pokes
// trigger. It reads the file once to record its checksum, so that Run reports
// every change made after New returns, including one made before Run starts.
// It returns an error when path is empty or cannot be made absolute, trigger
// or o.Logger is nil, or o.Debounce is negative; a missing file or directory
// is not an error.
func New(path string, trigger *Trigger, o Options) (*Watcher, error) {
	if path == "" {
		return nil, errors.New("while creating a file watcher: the path is empty")
	}
	if trigger == nil {
		return nil, fmt.Errorf("while creating a file watcher for %s: the trigger is nil", path)
	}
	if o.Logger == nil {
		return nil, fmt.Errorf("while creating a file watcher for %s: the logger is nil", path)
	}
	if o.Debounce < 0 {
		return nil, fmt.Errorf("while creating a file watcher for %s: the debounce %s is negative", path, o.Debounce)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("while making %s absolute: %w", path, err)
	}
	w := &Watcher{
		path:     abs,
		dir:      filepath.Dir(abs),
		trigger:  trigger,
		log:      o.Logger.With("path", abs),
		debounce: o.Debounce,
		retry:    defaultRetry,
	}
	if w.debounce == 0 {
		w.debounce = DefaultDebounce
	}
	w.sum = w.read()
	return w, nil
}

// Checksum returns the hex SHA-256 of the file's content when it was last
// read, or "" when the file was then missing or unreadable.
func (w *Watcher) Checksum() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sum
}

// Run watches the file until ctx is done, then returns nil. It returns an
// error only when the directory cannot be watched at all: the platform's
// watcher cannot be created (for example, the inotify instance limit is
// reached), or the directory exists at start but cannot be watched. A
// directory that is missing at start, or removed later, is retried every
// second until it can be watched again.
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("while creating a file system watcher for %s: %w", w.path, err)
	}
	defer fw.Close()

	r := &run{w: w, fw: fw, due: NewTrigger()}
	r.settle = NewDebouncer(r.due, w.debounce, maxWaitFactor*w.debounce)
	defer r.settle.Stop()
	defer r.stopRetry()

	switch err := fw.Add(w.dir); {
	case err == nil:
		r.dirWatched = true
	case errors.Is(err, fs.ErrNotExist):
		r.loseDir(err)
	default:
		return fmt.Errorf("while watching directory %s: %w", w.dir, err)
	}
	r.resolve()
	w.check()
	if w.started != nil {
		close(w.started)
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return fmt.Errorf("while watching directory %s: the file system watcher closed its events", w.dir)
			}
			r.event(ev)
		case err, ok := <-fw.Errors:
			if !ok {
				return fmt.Errorf("while watching directory %s: the file system watcher closed its errors", w.dir)
			}
			// An overflow or a read error may hide events: look again.
			w.log.Warn("file watcher error; checking the file again", "err", err)
			r.schedule()
		case <-r.due.C():
			w.check()
		case <-r.retryC:
			r.retryDir()
		}
	}
}

// run is the state of one Run, owned by its goroutine.
type run struct {
	w  *Watcher
	fw *fsnotify.Watcher

	dirWatched bool
	retryT     *time.Ticker
	retryC     <-chan time.Time

	target    string // the file's real path ("" when it does not resolve)
	targetDir string // extra directory watched for target ("" when none)

	// settle pokes due once the events of a burst are over.
	settle *Debouncer
	due    *Trigger
}

// event handles one file system event.
func (r *run) event(ev fsnotify.Event) {
	w := r.w
	name := filepath.Clean(ev.Name)
	w.log.Debug("file event", "event_path", name, "op", ev.Op.String())

	if name == w.dir && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
		_ = r.fw.Remove(w.dir) // gone already, or moved: either way drop it
		r.loseDir(errors.New("the directory was removed or renamed"))
		r.resolve()
		r.schedule()
		return
	}
	relevant := name == w.path || (r.target != "" && name == r.target)
	if r.resolve() {
		relevant = true
	}
	if relevant {
		r.schedule()
	}
}

// schedule starts or extends the debounce of a burst of events.
func (r *run) schedule() { r.settle.Poke() }

// loseDir notes that the directory is not watched and starts retrying; it
// logs once per loss.
func (r *run) loseDir(cause error) {
	if !r.dirWatched && r.retryT != nil {
		return
	}
	r.dirWatched = false
	r.w.log.Warn("cannot watch the file's directory; retrying until it can",
		"dir", r.w.dir, "every", r.w.retry, "err", cause)
	r.retryT = time.NewTicker(r.w.retry)
	r.retryC = r.retryT.C
}

func (r *run) stopRetry() {
	if r.retryT != nil {
		r.retryT.Stop()
		r.retryT, r.retryC = nil, nil
	}
}

// retryDir tries to watch the directory again; on success the file is
// checked at once.
func (r *run) retryDir() {
	if err := r.fw.Add(r.w.dir); err != nil {
		r.w.log.Debug("directory still cannot be watched", "dir", r.w.dir, "err", err)
		return
	}
	r.stopRetry()
	r.dirWatched = true
	r.w.log.Info("watching the file's directory again", "dir", r.w.dir)
	r.resolve()
	r.settle.Stop()
	select {
	case <-r.due.C(): // a check that was due is this one
	default:
	}
	r.w.check()
}

// resolve resolves the file's symlinks again, watches the directory of the
// real file when it is not the file's own directory, and reports whether the
// real path changed.
func (r *run) resolve() bool {
	target, err := filepath.EvalSymlinks(r.w.path)
	if err != nil {
		target = ""
	}
	changed := target != r.target
	r.target = target

	want := ""
	if target != "" {
		td := filepath.Dir(target)
		realDir, err := filepath.EvalSymlinks(r.w.dir)
		if td != r.w.dir && (err != nil || td != realDir) {
			want = td
		}
	}
	if want == r.targetDir {
		return changed
	}
	if r.targetDir != "" {
		_ = r.fw.Remove(r.targetDir) // may be gone already
	}
	r.targetDir = ""
	if want != "" {
		if err := r.fw.Add(want); err != nil {
			r.w.log.Debug("cannot watch the directory of the file's target", "dir", want, "err", err)
		} else {
			r.targetDir = want
		}
	}
	return changed
}

// read returns the hex SHA-256 of the file's content, or "" when it cannot be
// read.
func (w *Watcher) read() string {
	b, err := spec.ReadTopology(w.path)
	if err != nil {
		w.log.Debug("file cannot be read", "err", err)
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// check reads the file and pokes the trigger when its checksum changed.
func (w *Watcher) check() {
	sum := w.read()
	w.mu.Lock()
	old := w.sum
	w.sum = sum
	w.mu.Unlock()
	if sum != old {
		w.log.Info("file changed", "old", short(old), "new", short(sum))
		w.trigger.Poke()
	}
	if w.checked != nil {
		select {
		case w.checked <- struct{}{}:
		default:
		}
	}
}

// short abbreviates a checksum for logs; "missing" stands for "".
func short(sum string) string {
	if sum == "" {
		return "missing"
	}
	return sum[:12]
}
