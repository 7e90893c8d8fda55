package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// syncBuffer collects log lines written by the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunRefusesInvalidFile: an invalid file at start is fatal, before any
// engine is asked anything.
func TestRunRefusesInvalidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pacs.hcl")
	if err := os.WriteFile(path, []byte(invalidFile), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, nil, "run", "-f", path)
	if code != exitProblem || !strings.Contains(stderr, "nothing was changed") || !strings.Contains(stderr, `"level":"ERROR"`) {
		t.Fatalf("pacsd run on an invalid file: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestRunLogLevel(t *testing.T) {
	if code, _, stderr := runCLI(t, nil, "run", "--log-level", "loud"); code != exitUsage {
		t.Errorf("--log-level loud: exit %d, want %d\n%s", code, exitUsage, stderr)
	}
	var buf bytes.Buffer
	log := slog.New(leveled{Handler: newLogger(&buf).Handler(), min: slog.LevelDebug})
	log.Debug("shown")
	if !strings.Contains(buf.String(), "shown") {
		t.Errorf("a debug line was dropped at level debug: %q", buf.String())
	}
	buf.Reset()
	log = slog.New(leveled{Handler: newLogger(&buf).Handler(), min: slog.LevelWarn})
	log.With("k", "v").Info("hidden")
	if log.Enabled(context.Background(), slog.LevelInfo) || buf.Len() != 0 {
		t.Errorf("an info line was logged at level warn: %q", buf.String())
	}
}
