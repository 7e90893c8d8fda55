package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// defaultMode is the mode of a placed file whose FileWrite.Mode is 0.
const defaultMode = 0o600

// owner is the postgres user of an image.
type owner struct{ uid, gid int }

func (o owner) String() string { return strconv.Itoa(o.uid) + ":" + strconv.Itoa(o.gid) }

// ReadFiles reads files from a container, running or stopped. A path that
// does not exist, or is no regular file, is absent from the result.
func (r *Runtime) ReadFiles(ctx context.Context, id string, paths []string) (map[string][]byte, error) {
	if _, err := r.inspect(ctx, id); err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("while reading files of container %s: no such container", short(id))
		}
		return nil, err
	}
	// One archive request per file, all at once: a pass reads several files
	// of every node, and the requests are independent.
	type result struct {
		b   []byte
		ok  bool
		err error
	}
	results := make([]result, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, ok, err := r.readFile(ctx, id, p)
			results[i] = result{b, ok, err}
		}()
	}
	wg.Wait()
	out := make(map[string][]byte, len(paths))
	for i, p := range paths {
		if results[i].err != nil {
			return nil, results[i].err
		}
		if results[i].ok {
			out[p] = results[i].b
		}
	}
	return out, nil
}

// isNoSuchContainer tells the engine's "not found" for a container that is
// gone from the one for a path missing in a container that exists: both are
// 404, and only the first must never read as "the file is not there".
func isNoSuchContainer(err error) bool {
	return strings.Contains(err.Error(), "No such container")
}

func (r *Runtime) readFile(ctx context.Context, id, p string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Copy)
	defer cancel()
	rc, _, err := r.cli.CopyFromContainer(ctx, id, p)
	if isNotFound(err) && !isNoSuchContainer(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("while reading %s from container %s: %w", p, short(id), err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	if err == io.EOF || (err == nil && h.Typeflag != tar.TypeReg) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("while reading %s from container %s: %w", p, short(id), err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		return nil, false, fmt.Errorf("while reading %s from container %s: %w", p, short(id), err)
	}
	return b, true, nil
}

// WriteFiles places files into a container, owned by the postgres user of
// its image, with their mode (0600 when 0). On a running container each file
// is written beside its target under a temporary name and renamed over it, so
// the change is atomic; on a stopped or paused container, where no command can
// run, it is copied straight to its target.
// Missing parent directories are created, owned by postgres, mode 0700.
func (r *Runtime) WriteFiles(ctx context.Context, id string, files []reconcile.FileWrite) error {
	c, err := r.inspect(ctx, id)
	if isNotFound(err) {
		return fmt.Errorf("while writing files into container %s: no such container", short(id))
	}
	if err != nil {
		return err
	}
	running := c.State != nil && c.State.Running && !c.State.Paused
	return r.placeFiles(ctx, c.ID, c.Image, running, files)
}

// placeFiles places files into container id made from image (see WriteFiles).
// The files of one directory travel in one archive and, on a running
// container, are renamed into place by one command: a pass that writes
// several files costs about as much as one that writes one.
func (r *Runtime) placeFiles(ctx context.Context, id, image string, running bool, files []reconcile.FileWrite) error {
	o, err := r.postgresOwner(ctx, image, id)
	if err != nil {
		return err
	}
	var dirs []string
	byDir := map[string][]reconcile.FileWrite{}
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return fmt.Errorf("while writing %s into container %s: the path must be absolute and clean", f.Path, short(id))
		}
		d := path.Dir(f.Path)
		if _, ok := byDir[d]; !ok {
			dirs = append(dirs, d)
		}
		byDir[d] = append(byDir[d], f)
	}
	for _, d := range dirs {
		if err := r.placeDir(ctx, id, o, running, d, byDir[d]); err != nil {
			return err
		}
	}
	return nil
}

// placeDir places files, all in directory dir, into container id.
func (r *Runtime) placeDir(ctx context.Context, id string, o owner, running bool, dir string, files []reconcile.FileWrite) error {
	what := files[0].Path
	if len(files) > 1 {
		what = fmt.Sprintf("%d files in %s", len(files), dir)
	}
	entries := make([]tarFile, len(files))
	var moves []string // pairs of temporary name and target, for a running container
	for i, f := range files {
		entries[i] = tarFile{path: f.Path, content: f.Content, mode: f.Mode}
		if running {
			entries[i].path = path.Join(dir, ".pacsd-tmp-"+randomSuffix()+"-"+path.Base(f.Path))
			moves = append(moves, entries[i].path, f.Path)
		}
	}
	// The directory is there nearly always: copy straight into it, and look
	// for what is missing only when the engine says it is not there.
	err := r.copyTar(ctx, id, dir, nil, entries, o)
	if isNotFound(err) && !isNoSuchContainer(err) {
		var root string
		var missing []string
		if root, missing, err = r.existingDir(ctx, id, dir); err != nil {
			return err
		}
		err = r.copyTar(ctx, id, root, missing, entries, o)
	}
	if err != nil {
		return fmt.Errorf("while writing %s into container %s: %w", what, short(id), err)
	}
	if !running {
		return nil
	}
	// Each rename is atomic; the arguments reach mv as they are, never
	// through the shell's parser.
	script := `while [ $# -gt 0 ]; do mv -f "$1" "$2" || exit 1; shift 2; done`
	out, code, err := r.exec(ctx, id, o.String(), append([]string{"sh", "-c", script, "sh"}, moves...)...)
	if err == nil && code != 0 {
		err = fmt.Errorf("mv exited with %d: %s", code, strings.TrimSpace(out))
	}
	if err != nil {
		rm := []string{"rm", "-f"}
		for i := 0; i < len(moves); i += 2 {
			rm = append(rm, moves[i])
		}
		_, _, _ = r.exec(ctx, id, "0:0", rm...)
		return fmt.Errorf("while renaming %s into place in container %s: %w", what, short(id), err)
	}
	return nil
}

// copyTar extracts, at root in container id, the directories dirs and the
// files (see filesTar).
func (r *Runtime) copyTar(ctx context.Context, id, root string, dirs []string, files []tarFile, o owner) error {
	archive, err := filesTar(root, dirs, files, o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Copy)
	defer cancel()
	return r.cli.CopyToContainer(ctx, id, root, bytes.NewReader(archive), container.CopyToContainerOptions{})
}

// existingDir returns the deepest existing directory of dir (dir itself when
// it exists) and the directories below it that are missing, top first.
func (r *Runtime) existingDir(ctx context.Context, id, dir string) (string, []string, error) {
	var missing []string
	for {
		ctx, cancel := context.WithTimeout(ctx, r.timeouts().Inspect)
		st, err := r.cli.ContainerStatPath(ctx, id, dir)
		cancel()
		switch {
		case err == nil && st.Mode.IsDir():
			return dir, missing, nil
		case err == nil:
			return "", nil, fmt.Errorf("while writing into %s in container %s: it is no directory", dir, short(id))
		case !isNotFound(err):
			return "", nil, fmt.Errorf("while looking at %s in container %s: %w", dir, short(id), err)
		}
		missing = append([]string{dir}, missing...)
		dir = path.Dir(dir)
	}
}

// tarFile is one file of filesTar: its absolute path, content and mode
// (0600 when 0).
type tarFile struct {
	path    string
	content []byte
	mode    int64
}

// filesTar builds the archive that places files when extracted at root: the
// directories dirs (missing below root, top first) with mode 0700, then the
// files, all owned by o. Directories that exist are not in the archive, so
// their owner and mode stay as they are.
func filesTar(root string, dirs []string, files []tarFile, o owner) ([]byte, error) {
	rel := func(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, root), "/") }
	now := time.Now()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range dirs {
		h := &tar.Header{Name: rel(d) + "/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: o.uid, Gid: o.gid, ModTime: now}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		mode := f.mode
		if mode == 0 {
			mode = defaultMode
		}
		h := &tar.Header{Name: rel(f.path), Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(f.content)), Uid: o.uid, Gid: o.gid, ModTime: now}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Exec runs cmd in the running container id as user and returns its combined
// output and exit code; a non-zero exit code is not an error.
func (r *Runtime) Exec(ctx context.Context, id, user string, cmd []string) (string, int, error) {
	out, code, err := r.exec(ctx, id, user, cmd...)
	if err != nil {
		return out, code, fmt.Errorf("while running %q in container %s: %w", cmd[0], id, err)
	}
	return out, code, nil
}

// exec runs cmd in a running container as user and returns its combined
// output and exit code.
func (r *Runtime) exec(ctx context.Context, id, user string, cmd ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Change)
	defer cancel()
	ex, err := r.cli.ContainerExecCreate(ctx, id, container.ExecOptions{User: user, Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", -1, err
	}
	att, err := r.cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return "", -1, err
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
		return out.String(), -1, err
	}
	insp, err := r.cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return out.String(), -1, err
	}
	return out.String(), insp.ExitCode, nil
}

// postgresOwner returns the uid and gid of the postgres user of image, read
// once per image ID in a probe container.
func (r *Runtime) postgresOwner(ctx context.Context, image, id string) (owner, error) {
	img, err := r.ImageInspect(ctx, image)
	if err != nil {
		return owner{}, err
	}
	if img == nil {
		return owner{}, fmt.Errorf("while looking up the postgres user of image %s: no such image", image)
	}
	r.mu.Lock()
	o, ok := r.owners[img.ID]
	r.mu.Unlock()
	if ok {
		return o, nil
	}
	// A created container's /etc/passwd can be read without starting
	// anything; a probe container is the fallback.
	found := false
	if id != "" {
		if passwd, ok, err := r.readFile(ctx, id, "/etc/passwd"); err == nil && ok {
			o, found = passwdOwner(passwd)
		}
	}
	if !found {
		out, err := r.probe(ctx, img.ID, reconcile.Mount{}, "id -u postgres && id -g postgres")
		if err != nil {
			return owner{}, fmt.Errorf("while looking up the postgres user of image %s: %w", image, err)
		}
		if o, err = parseOwner(out); err != nil {
			return owner{}, fmt.Errorf("while looking up the postgres user of image %s: %w", image, err)
		}
	}
	r.mu.Lock()
	r.owners[img.ID] = o
	r.mu.Unlock()
	return o, nil
}

// passwdOwner finds the uid and gid of the postgres user in an /etc/passwd.
func passwdOwner(passwd []byte) (owner, bool) {
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 4 || f[0] != "postgres" {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 == nil && err2 == nil {
			return owner{uid, gid}, true
		}
	}
	return owner{}, false
}

// parseOwner reads the output of `id -u postgres && id -g postgres`.
func parseOwner(out string) (owner, error) {
	f := strings.Fields(out)
	if len(f) != 2 {
		return owner{}, fmt.Errorf("unexpected output %q", out)
	}
	uid, err1 := strconv.Atoi(f[0])
	gid, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return owner{}, fmt.Errorf("unexpected output %q", out)
	}
	return owner{uid, gid}, nil
}
