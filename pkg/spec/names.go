package spec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Names are the names a topology file declares, for shell completion.
type Names struct {
	Clusters []ClusterNames
	// Hosts are the names of the host blocks.
	Hosts []string
}

// ClusterNames are a cluster's name and its nodes' names.
type ClusterNames struct {
	Name  string
	Nodes []string
}

// ReadNames returns the labels of the cluster, node and host blocks of the
// topology file at path, those that are valid names, in file order. It only
// reads and parses that file, with the limits of ParseFile: it evaluates no
// expression (no env(), no file()), reads no password or certificate file,
// and checks nothing else. An error when the file cannot be read or parsed,
// or is not a regular file (a FIFO or a terminal would block the reader).
// The file is opened once, without blocking, and what was opened is checked:
// a path swapped for a FIFO between a check and the open cannot hang a
// shell's completion.
func ReadNames(path string) (Names, error) {
	src, err := readRegular(path)
	if err != nil {
		return Names{}, err
	}
	if diags := checkLimits(src, path); diags.HasErrors() {
		return Names{}, diags
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return Names{}, diags
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return Names{}, errors.New("not HCL native syntax")
	}
	var n Names
	for _, b := range body.Blocks {
		switch {
		case !namedBlock(b):
		case b.Type == "cluster":
			c := ClusterNames{Name: b.Labels[0]}
			for _, nb := range b.Body.Blocks {
				if nb.Type == "node" && namedBlock(nb) {
					c.Nodes = append(c.Nodes, nb.Labels[0])
				}
			}
			n.Clusters = append(n.Clusters, c)
		case b.Type == "host":
			n.Hosts = append(n.Hosts, b.Labels[0])
		}
	}
	return n, nil
}

// namedBlock reports whether b has one label, a valid name.
func namedBlock(b *hclsyntax.Block) bool {
	return len(b.Labels) == 1 && namePattern.MatchString(b.Labels[0])
}

// readRegular returns the content of the regular file at path, at most
// MaxFileSize+1 bytes. It opens path without blocking and checks the opened
// file: a FIFO, a device, or a file that reads without end but says it is
// empty (those of /proc) is refused, never waited on.
func readRegular(path string) ([]byte, error) {
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return nil, fmt.Errorf("%s is not a regular file with content", path)
	}
	return io.ReadAll(io.LimitReader(fh, min(st.Size(), MaxFileSize+1)))
}
