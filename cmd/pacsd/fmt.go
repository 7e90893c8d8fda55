package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/spf13/cobra"
)

// maxFmtFile is the largest topology file fmt formats, as spec.ParseFile
// reads.
const maxFmtFile = 1 << 20

// exitUnformatted is fmt --check's exit code for a file that is not
// formatted (as terraform fmt -check): 1 stays for a file that cannot be
// read or parsed.
const exitUnformatted = 3

// newFmtCmd is 'pacsd fmt': it formats the topology file canonically
// (hclwrite: indentation, aligned equals signs, spacing), keeping its
// comments and its order. With --check it changes nothing and exits 3 when
// the file is not formatted, naming it. A file whose syntax is broken is
// left alone: exit 1 with the diagnostics. It checks syntax only; 'pacsd
// validate' checks the rest.
func newFmtCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fmt [-f FILE] [--check]",
		Short: "format the topology file canonically, keeping its comments (--check: exit 3 when not formatted)",
		Long: `Rewrites the topology file in canonical form (indentation, aligned equals
signs, spacing), keeping its comments and the order of its blocks, and prints
its name when it changed. The file is replaced at once, with its mode, owner
and group: a running pacsd reads the old or the new content, never half of
it. A file whose syntax is broken is left alone (exit 1, with the problems).
It checks the syntax only; 'pacsd validate' checks the rest.

--check changes nothing: exit 0 when the file is formatted, 3 (and its name on
stdout) when it is not, as in a commit hook or CI.`,
		Example: `  pacsd fmt -f /etc/pacsd/pacs.hcl
  pacsd fmt --check -f pacs.hcl || echo "run: pacsd fmt -f pacs.hcl"`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	path := c.fileFlag(cmd)
	check := cmd.Flags().Bool("check", false, "change nothing; exit 3 when the file is not formatted")
	cmd.RunE = action(func([]string) int { return c.formatFile(*path, *check) })
	return cmd
}

// formatFile formats the file at path, or with check says whether it is formatted.
func (c *cli) formatFile(path string, check bool) int {
	// A symbolic link is resolved once: the file read is the file written.
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd fmt: %v\n", err)
		return exitProblem
	}
	src, err := os.ReadFile(real)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd fmt: %v\n", err)
		return exitProblem
	}
	if len(src) > maxFmtFile {
		fmt.Fprintf(c.stderr, "pacsd fmt: %s is larger than %d bytes; nothing was changed\n", path, maxFmtFile)
		return exitProblem
	}
	if _, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos); diags.HasErrors() {
		_ = writeDiagnostics(c.stderr, path, diags)
		fmt.Fprintf(c.stderr, "pacsd fmt: %s has syntax errors; nothing was changed\n", path)
		return exitProblem
	}
	out := hclwrite.Format(src)
	if bytes.Equal(out, src) {
		return exitOK
	}
	if check {
		fmt.Fprintf(c.stdout, "%s\n", path)
		fmt.Fprintf(c.stderr, "pacsd fmt: %s is not formatted; run 'pacsd fmt -f %s'\n", path, path)
		return exitUnformatted
	}
	if err := replaceKeepingMode(real, out); err != nil {
		fmt.Fprintf(c.stderr, "pacsd fmt: while writing %s: %v; the file is unchanged\n", path, err)
		return exitProblem
	}
	fmt.Fprintf(c.stdout, "%s\n", path)
	return exitOK
}

// replaceKeepingMode replaces the file at path with b at once (a temporary
// file beside it, renamed over it), with the file's mode and, as root, its
// owner and group: a running pacsd
// reads either the old or the new content, never half of it.
// It refuses, changing nothing, when it cannot keep the owner and group.
func replaceKeepingMode(path string, b []byte) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(st.Mode().Perm())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && err == nil {
		if cerr := tmp.Chown(int(sys.Uid), int(sys.Gid)); cerr != nil { // root:pacsd 0640 stays so
			err = fmt.Errorf("cannot keep its owner and group (%d:%d): %w; run pacsd fmt as root or as its owner", sys.Uid, sys.Gid, cerr)
		}
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
