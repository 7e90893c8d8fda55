// Command dist builds pacsd's Debian package from a pacsd binary built for
// it (make dist builds both): the binary, the systemd unit, the sysusers
// entry, the configuration examples as conffiles, the shell completion
// scripts (from the binary's completion command), the documentation and the
// maintainer scripts in debian/. It writes dist/pacsd_VERSION_ARCH.deb and
// prints its path.
//
//	go run ./internal/dist -binary dist/pacsd -version "$(git describe --tags --always --dirty)" -commits "$(git rev-list --count HEAD)"
//
// SOURCE_DATE_EPOCH sets the files' times (make dist sets the commit's), so
// that one commit gives the same package.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
)

func main() {
	binary := flag.String("binary", "dist/pacsd", "the pacsd binary to package (built with CGO_ENABLED=0)")
	version := flag.String("version", "", "the version stamped into the binary: git describe --tags --always --dirty")
	commits := flag.Int("commits", 0, "the number of commits (git rev-list --count HEAD), for a version without a tag")
	root := flag.String("root", ".", "the repository's top directory")
	out := flag.String("out", "dist", "the `DIRECTORY` the package is written to")
	arch := flag.String("arch", runtime.GOARCH, "the binary's architecture (GOARCH)")
	flag.Parse()
	path, err := build(*binary, *version, *commits, *root, *out, *arch)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dist: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

// build writes the package into out and returns its path.
func build(binary, version string, commits int, root, out, arch string) (string, error) {
	debVer, err := debVersion(version, commits)
	if err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp("", "pacsd-dist-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	unit, err := os.ReadFile(filepath.Join(root, "systemd", "pacsd.service"))
	if err != nil {
		return "", err
	}
	if unit, err = packagedUnit(unit); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(stage, "pacsd.service"), unit, 0o644); err != nil {
		return "", err
	}
	// The completion scripts, as the binary packaged prints them.
	for _, shell := range shells {
		script, err := exec.Command(binary, "completion", shell).Output()
		if err != nil {
			return "", fmt.Errorf("while running %s completion %s (the binary must run on this machine): %w", binary, shell, err)
		}
		if err := os.WriteFile(filepath.Join(stage, "completion."+shell), script, 0o644); err != nil {
			return "", err
		}
	}
	examples, err := trackedExamples(root)
	if err != nil {
		return "", err
	}
	info := packageInfo(layout{root: root, stage: stage, binary: binary, examples: examples}, debVer, arch)
	if err := nfpm.PrepareForPackager(nfpm.WithDefaults(info), "deb"); err != nil {
		return "", fmt.Errorf("while preparing the package: %w", err)
	}
	deb, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(out, deb.ConventionalFileName(info))
	tmp, err := os.CreateTemp(out, ".pacsd-*.deb")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := deb.Package(info, tmp); err != nil {
		tmp.Close()
		return "", fmt.Errorf("while writing the package: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}

// trackedExamples are the example topology files git tracks in root: a
// developer's own file beside them (untracked, so git describe does not
// call the tree dirty) never ships.
func trackedExamples(root string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--", "examples/*.hcl")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("while listing the example files git tracks in %s (make dist runs in a git checkout): %w", root, err)
	}
	var paths []string
	for _, rel := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if rel != "" && !strings.Contains(rel[len("examples/"):], "/") {
			paths = append(paths, filepath.Join(root, rel))
		}
	}
	return paths, nil
}
