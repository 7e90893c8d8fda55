package spec

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// maxReadSize bounds what file(), password files and TLS files may hold.
const maxReadSize = 1 << 20

// ParseFile reads the topology file at path and parses it like Parse.
// Diagnostics name the file as path was given; File.Path is absolute and
// relative paths in the file are resolved against the file's directory.
func ParseFile(path string) (*File, hcl.Diagnostics) {
	abs, err := filepath.Abs(path)
	if err == nil {
		var src []byte
		src, err = ReadTopology(abs)
		if err == nil {
			f, diags := parse(src, path, filepath.Dir(abs))
			if f != nil {
				f.Path = abs
			}
			return f, diags
		}
	}
	return nil, hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Cannot Read Topology File",
		Detail:   fmt.Sprintf("pacsd could not read the topology file %q (%s). Check the path given with --file or PACSD_FILE, and that pacsd may read the file.", path, err),
	}}
}

// ReadTopology reads the topology file, at most one byte more than
// MaxFileSize: a larger file is refused by its size, never read whole. The
// daemon and the watcher read it this way too.
func ReadTopology(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
}

// Parse parses src, the content of the topology file named filename, and
// validates it. A file larger than 1 MiB or nested deeper than 64 levels is
// refused with a diagnostic before it is parsed. Relative paths in the file are resolved against filename's
// directory. It returns every diagnostic at once, sorted by position, and a
// *File with all defaults filled in only when there is no error; warnings do not
// prevent a result.
func Parse(src []byte, filename string) (*File, hcl.Diagnostics) {
	return parse(src, filename, filepath.Dir(filename))
}

func parse(src []byte, filename, dir string) (*File, hcl.Diagnostics) {
	if diags := checkLimits(src, filename); diags.HasErrors() {
		return nil, diags
	}
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, normalize(diags)
	}
	d := &decoder{dir: dir, filename: filename}
	d.ctx = &hcl.EvalContext{Functions: map[string]function.Function{
		"env":  envFunc,
		"file": d.fileFunc(),
	}}
	d.secretCtx = &hcl.EvalContext{Functions: map[string]function.Function{
		"env":  envFunc,
		"file": d.secretFileFunc(),
	}}
	file := d.decodeFile(f.Body)
	file.Path = filename
	if len(file.Clusters) == 0 && !d.diags.HasErrors() {
		rng := hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}
		what := "declares no cluster"
		if len(bytes.TrimSpace(src)) == 0 {
			what = "is empty"
		}
		d.errorf(rng, "No Cluster Declared",
			"The topology file %s. pacsd never reads an empty or truncated file as \"nothing is wanted\": declare at least one cluster block, or restore the file from its last good version.", what)
	}
	d.checkFile(file)
	placeNodes(file)
	diags = append(diags, d.diags...)
	d.scrub(diags)
	diags = normalize(diags)
	if diags.HasErrors() {
		return nil, diags
	}
	return file, diags
}

// normalize writes every summary in Title Case, sorts diagnostics by
// position and bounds them (boundDiagnostics).
func normalize(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, d := range diags {
		d.Summary = titleCase(d.Summary)
	}
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a != nil && b == nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		case a.Start.Line != b.Start.Line:
			return a.Start.Line < b.Start.Line
		default:
			return a.Start.Column < b.Start.Column
		}
	})
	return boundDiagnostics(diags)
}

// envFunc is env("NAME"): the value of an environment variable, an error when it is not set.
var envFunc = function.New(&function.Spec{
	Description: "Returns the value of an environment variable of pacsd's process.",
	Params:      []function.Parameter{{Name: "name", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		name := args[0].AsString()
		v, ok := os.LookupEnv(name)
		if !ok {
			return cty.NilVal, fmt.Errorf("the environment variable %s is not set; set it in pacsd's environment (for the service, in its environment file)", name)
		}
		return cty.StringVal(v), nil
	},
})

// fileFunc is file("path"): the content of a file, the path relative to the
// topology file. A file only its owner may read (mode 0600 or 0400) holds a
// secret, and is refused: it is read only where a password is expected
// (secretFileFunc), so that its content never shows in the parsed topology,
// plan output or docker inspect.
func (d *decoder) fileFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the content of a file; a relative path is relative to the topology file.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path := args[0].AsString()
			full := d.resolve(path)
			if st, err := os.Stat(full); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o077 == 0 {
				return cty.NilVal, fmt.Errorf("the file %q can be read by its owner only (mode %04o), so it holds a secret, and %s is not a password: its value would show in diagnostics, plan output and docker inspect. Read a password with password = file(...) or password_file in a superuser, replication or role block; a file that holds no secret may have mode 0644", path, st.Mode().Perm(), d.attrName())
			}
			b, err := readSmallFile(full)
			if err != nil {
				return cty.NilVal, err
			}
			if !utf8.Valid(b) {
				return cty.NilVal, fmt.Errorf("the file %q is not UTF-8 text", path)
			}
			d.reads = append(d.reads, fileRead{attr: d.attrName(), path: path, content: string(b)})
			return cty.StringVal(string(b)), nil
		},
	})
}

// fileRead is a value file() returned while the attribute attr was evaluated.
type fileRead struct{ attr, path, content string }

// attrName names the attribute being evaluated, for diagnostics.
func (d *decoder) attrName() string {
	if d.attr == "" {
		return "the attribute"
	}
	return d.attr
}

// scrub replaces, in the summary and detail of every diagnostic, each value
// file() returned (whole, trimmed, each of its lines, as written and as %q
// writes it) with a phrase that names the attribute and the file: a value
// read from a file never shows in a diagnostic, whatever check quotes it.
func (d *decoder) scrub(diags hcl.Diagnostics) {
	// The attributes that read each content, and the file it came from.
	type source struct {
		attrs []string
		path  string
	}
	sources := map[string]*source{}
	var contents []string
	for _, r := range d.reads {
		src := sources[r.content]
		if src == nil {
			src = &source{path: r.path}
			sources[r.content] = src
			contents = append(contents, r.content)
		}
		if !slices.Contains(src.attrs, r.attr) {
			src.attrs = append(src.attrs, r.attr)
		}
	}
	var pairs [][2]string
	for _, content := range contents {
		src := sources[content]
		phrase := fmt.Sprintf("(the value of %s read from the file %q)", src.attrs[0], src.path)
		if len(src.attrs) > 1 {
			phrase = fmt.Sprintf("(a value read from the file %q)", src.path)
		}
		parts := append([]string{content, strings.TrimSpace(content)}, strings.Split(content, "\n")...)
		for i, p := range parts {
			if i > 0 {
				p = strings.TrimSpace(p)
			}
			if p == "" {
				continue
			}
			quoted := strconv.Quote(p)
			pairs = append(pairs, [2]string{quoted, phrase})
			if len(p) >= 3 {
				pairs = append(pairs, [2]string{quoted[1 : len(quoted)-1], phrase}, [2]string{p, phrase})
			}
		}
	}
	if len(pairs) == 0 {
		return
	}
	// The longest first: the replacer tries them in this order.
	sort.SliceStable(pairs, func(i, j int) bool { return len(pairs[i][0]) > len(pairs[j][0]) })
	var args []string
	for _, p := range pairs {
		args = append(args, p[0], p[1])
	}
	rep := strings.NewReplacer(args...)
	for _, diag := range diags {
		diag.Summary = rep.Replace(diag.Summary)
		diag.Detail = rep.Replace(diag.Detail)
	}
}

// secretFileFunc is file("path") where a password is expected: the file must
// be readable by its owner only, like a password_file, and its trailing line
// breaks are dropped.
func (d *decoder) secretFileFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the content of a file readable only by its owner, without trailing line breaks; a relative path is relative to the topology file.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path := args[0].AsString()
			full := d.resolve(path)
			if st, err := os.Stat(full); err == nil && st.Mode().Perm()&0o077 != 0 {
				return cty.NilVal, fmt.Errorf("the password file %q has mode %04o, so other users of this machine can read or change it; run \"chmod 600 %s\"", path, st.Mode().Perm(), full)
			}
			b, err := readSmallFile(full)
			if err != nil {
				return cty.NilVal, err
			}
			if !utf8.Valid(b) {
				return cty.NilVal, fmt.Errorf("the file %q is not UTF-8 text", path)
			}
			d.reads = append(d.reads, fileRead{attr: d.attrName(), path: path, content: string(b)})
			return cty.StringVal(trimLineEnds(string(b))), nil
		},
	})
}

// readSmallFile reads a regular file of at most maxReadSize bytes.
func readSmallFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("while opening %q: %w", path, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("while reading %q: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%q is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxReadSize+1))
	if err != nil {
		return nil, fmt.Errorf("while reading %q: %w", path, err)
	}
	if len(b) > maxReadSize {
		return nil, fmt.Errorf("%q is larger than %d bytes", path, maxReadSize)
	}
	return b, nil
}

// decoder collects diagnostics while the decodeXBlock functions walk the file.
type decoder struct {
	ctx *hcl.EvalContext
	// secretCtx evaluates password attributes: its file() checks the file's mode.
	secretCtx *hcl.EvalContext
	dir       string
	filename  string
	diags     hcl.Diagnostics
	// attr names the attribute being evaluated ("database",
	// "settings.shared_buffers"), for what file() reads.
	attr string
	// reads are the values file() returned, which scrub keeps out of diagnostics.
	reads []fileRead
	// everyHost says that the file has a daemon.etcd block: pacsd runs on
	// every host (decodeFile sets it before it decodes clusters and hosts).
	everyHost bool
}

func (d *decoder) errorf(rng hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng.Ptr()})
}

func (d *decoder) warnf(rng hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng.Ptr()})
}

// content applies schema to body and keeps the diagnostics.
func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema) *hcl.BodyContent {
	c, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	return c
}

// resolve makes path absolute against the topology file's directory.
func (d *decoder) resolve(path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(d.dir, path)
}

// value evaluates the attribute name (when present and not null) and converts it
// to ty; want describes ty for the diagnostic ("a number, such as 15432").
func (d *decoder) value(attrs hcl.Attributes, name string, ty cty.Type, want string) (cty.Value, *hcl.Attribute) {
	attr, ok := attrs[name]
	if !ok {
		return cty.NilVal, nil
	}
	d.attr = name
	v, diags := attr.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || v.IsNull() || !v.IsWhollyKnown() {
		return cty.NilVal, nil
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		d.errorf(attr.Expr.Range(), "Incorrect Attribute Value Type",
			"The value of %q must be %s; %s.", name, want, err)
		return cty.NilVal, nil
	}
	return cv, attr
}

// str decodes a string attribute into dst and returns the attribute, or nil when
// it is absent or wrong (dst then keeps its default).
func (d *decoder) str(attrs hcl.Attributes, name string, dst *string) *hcl.Attribute {
	v, attr := d.value(attrs, name, cty.String, "a string")
	if attr != nil {
		*dst = v.AsString()
	}
	return attr
}

// boolean decodes a bool attribute into dst.
func (d *decoder) boolean(attrs hcl.Attributes, name string, dst *bool) *hcl.Attribute {
	v, attr := d.value(attrs, name, cty.Bool, "true or false")
	if attr != nil {
		*dst = v.True()
	}
	return attr
}

// integer decodes a whole-number attribute into dst.
func (d *decoder) integer(attrs hcl.Attributes, name string, dst *int) *hcl.Attribute {
	v, attr := d.value(attrs, name, cty.Number, "a whole number")
	if attr == nil {
		return nil
	}
	n, acc := v.AsBigFloat().Int64()
	if acc != 0 || n < -1<<31 || n > 1<<31 {
		d.errorf(attr.Expr.Range(), "Incorrect Attribute Value Type", "The value of %q must be a whole number; %s is not.", name, v.AsBigFloat().Text('g', -1))
		return nil
	}
	*dst = int(n)
	return attr
}

// stringList decodes a list of strings into dst.
func (d *decoder) stringList(attrs hcl.Attributes, name string, dst *[]string) *hcl.Attribute {
	v, attr := d.value(attrs, name, cty.List(cty.String), `a list of strings, such as ["a", "b"]`)
	if attr == nil {
		return nil
	}
	*dst = []string{}
	for _, e := range v.AsValueSlice() {
		if e.IsNull() {
			d.errorf(attr.Expr.Range(), "Incorrect Attribute Value Type", "The list %q must not contain null.", name)
			return nil
		}
		*dst = append(*dst, e.AsString())
	}
	return attr
}

// size decodes a size attribute such as "16MB" into dst.
func (d *decoder) size(attrs hcl.Attributes, name string, dst *Size) {
	var text string
	if attr := d.str(attrs, name, &text); attr != nil {
		s, problem := ParseSize(text)
		if problem != "" {
			d.errorf(attr.Expr.Range(), "Invalid Size", "%s", problem)
			return
		}
		*dst = s
	}
}

// duration decodes a duration attribute such as "3s" into dst, and returns
// the attribute when it is present and valid.
func (d *decoder) duration(attrs hcl.Attributes, name string, dst *Duration) *hcl.Attribute {
	var text string
	attr := d.str(attrs, name, &text)
	if attr == nil {
		return nil
	}
	v, problem := ParseDuration(text)
	if problem != "" {
		d.errorf(attr.Expr.Range(), "Invalid Duration", "%s", problem)
		return nil
	}
	*dst = v
	return attr
}

// usesFunction reports whether expr calls a function (env or file), as opposed
// to a value written out in the file.
func usesFunction(expr hcl.Expression) bool {
	node, ok := expr.(hclsyntax.Node)
	if !ok {
		return true
	}
	found := false
	_ = hclsyntax.VisitAll(node, func(n hclsyntax.Node) hcl.Diagnostics {
		if _, ok := n.(*hclsyntax.FunctionCallExpr); ok {
			found = true
		}
		return nil
	})
	return found
}

// placeNodes gives each node on a host block that block's Docker endpoint.
func placeNodes(f *File) {
	hosts := map[string]*Host{}
	for _, h := range f.Hosts {
		if hosts[h.Name] == nil {
			hosts[h.Name] = h
		}
	}
	for _, c := range f.Clusters {
		for _, n := range c.Nodes {
			if h := hosts[n.Host]; h != nil {
				n.Docker = h.Docker
			}
		}
	}
}
