package spec

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/zclconf/go-cty/cty"
)

//go:generate go run ./internal/paramgen -data internal/paramgen/data -out params_catalog.go

// ParamType is the value type of a PostgreSQL parameter, as pg_settings.vartype.
type ParamType int

// The parameter types of pg_settings.vartype.
const (
	Bool    ParamType = iota + 1 // on or off
	Integer                      // a whole number, optionally with a unit
	Real                         // a floating-point number, optionally with a unit
	String                       // free text
	Enum                         // one of EnumVals
)

// String returns the pg_settings.vartype spelling of t: bool, integer, real,
// string or enum.
func (t ParamType) String() string {
	switch t {
	case Bool:
		return "bool"
	case Integer:
		return "integer"
	case Real:
		return "real"
	case String:
		return "string"
	case Enum:
		return "enum"
	}
	return fmt.Sprintf("ParamType(%d)", int(t))
}

// Param describes one PostgreSQL server parameter.
type Param struct {
	Name     string    // as pg_settings.name, e.g. "shared_buffers" or "TimeZone"
	Type     ParamType // Bool, Integer, Real, String or Enum
	Unit     string    // base unit as pg_settings.unit: "", "B", "kB", "8kB", "MB", "ms", "s", "min"
	Context  string    // pg_settings.context: postmaster, sighup, superuser, user, internal, ...
	Min, Max float64   // bounds for Integer and Real, in Unit
	EnumVals []string  // the values of an Enum, as pg_settings.enumvals
	MinMajor int       // first PostgreSQL major that has it; 12 when every supported major has it
	MaxMajor int       // last PostgreSQL major that has it; 0 when current

	// Removed is set for names that PostgreSQL no longer knows but operators
	// still write (from old guides): the rest of the sentence saying since
	// when and what to use instead, e.g. "was removed in PostgreSQL 9.5; use
	// max_wal_size instead". CheckParamValue refuses such a parameter.
	Removed string
}

// removedParams are names dropped before the oldest supported major that
// operators following old replication guides still write.
var removedParams = map[string]string{
	"checkpoint_segments":  "was removed in PostgreSQL 9.5; use max_wal_size instead",
	"wal_keep_segments":    "was removed in PostgreSQL 13; pacsd keeps WAL for standbys with replication slots, bounded by replication.max_slot_wal",
	"standby_mode":         "was removed in PostgreSQL 12 together with recovery.conf; pacsd marks standbys with standby.signal itself",
	"trigger_file":         "was removed in PostgreSQL 12 together with recovery.conf; pacsd promotes a standby with pg_promote()",
	"stats_temp_directory": "was removed in PostgreSQL 15, which keeps statistics in shared memory",
}

// managedParams are the parameters pacsd writes itself, with the spec field
// that controls each ("" when pacsd alone decides). Every recovery_target*
// parameter is managed too (see ManagedParam).
var managedParams = map[string]string{
	// Where the server listens and keeps its files: fixed by the container
	// layout pacsd builds.
	"listen_addresses":        "",
	"port":                    "",
	"unix_socket_directories": "",
	"data_directory":          "node.data",
	"config_file":             "",
	"hba_file":                "",
	"ident_file":              "",
	"external_pid_file":       "",
	// Streaming replication and failover.
	"hot_standby":               "",
	"primary_conninfo":          "",
	"primary_slot_name":         "",
	"promote_trigger_file":      "",
	"wal_log_hints":             "",
	"max_slot_wal_keep_size":    "replication.max_slot_wal",
	"synchronous_standby_names": "replication.synchronous",
	// TLS: always on, with the certificate and key pacsd places in PGDATA.
	"ssl":           "the cluster's tls block",
	"ssl_cert_file": "the cluster's tls block",
	"ssl_key_file":  "the cluster's tls block",
}

// paramIndex maps lower-case names to their entry: the generated catalogue
// and the removed names.
var paramIndex = func() map[string]Param {
	idx := make(map[string]Param, len(paramCatalog)+len(removedParams))
	for _, p := range paramCatalog {
		idx[strings.ToLower(p.Name)] = p
	}
	for name, why := range removedParams {
		idx[name] = Param{Name: name, Type: String, Removed: why}
	}
	return idx
}()

// liveParamNames are the lower-case names SuggestParam chooses from.
var liveParamNames = func() []string {
	names := make([]string, len(paramCatalog))
	for i, p := range paramCatalog {
		names[i] = strings.ToLower(p.Name)
	}
	return names
}()

// LookupParam returns the parameter called name, compared case-insensitively
// as PostgreSQL does, and whether it is known. It knows every parameter of
// PostgreSQL 12 and newer (see Param.MinMajor and Param.MaxMajor for the
// majors that have it) and a few removed ones that old guides still name
// (Param.Removed set; CheckParamValue refuses those). Parameters of
// extensions (names with a dot) are not known.
func LookupParam(name string) (Param, bool) {
	p, ok := paramIndex[strings.ToLower(name)]
	return p, ok
}

// SuggestParam returns the name of the current parameter closest to name
// when name looks like a misspelling of it (fewer than three edits, case
// ignored), or "".
func SuggestParam(name string) string {
	s := suggest(strings.ToLower(name), liveParamNames)
	if s == "" {
		return ""
	}
	return paramIndex[s].Name
}

// ManagedParam reports whether pacsd sets the parameter name itself, so that
// it may not appear in settings, and which spec field controls it instead
// ("" when pacsd alone decides). Names compare case-insensitively.
//
// Parameters that are allowed with some values only are not managed: their
// bad values are refused by CheckParamValue (wal_level below replica,
// full_page_writes off).
func ManagedParam(name string) (controlledBy string, managed bool) {
	name = strings.ToLower(name)
	if strings.HasPrefix(name, "recovery_target") {
		// A recovery target would stop a standby short of the primary.
		return "", true
	}
	controlledBy, managed = managedParams[name]
	return controlledBy, managed
}

// restrictedValues refuse values that PostgreSQL accepts but a pacsd
// cluster cannot run with. Each gets the normalized value and returns the
// reason, or "".
var restrictedValues = map[string]func(normalized string) string{
	"wal_level": func(v string) string {
		if v == "minimal" {
			return "wal_level must be replica or logical, because standbys stream WAL from the primary; \"minimal\" is not allowed."
		}
		return ""
	},
	"ssl_max_protocol_version": func(v string) string {
		if v == "TLSv1" || v == "TLSv1.1" {
			return "ssl_max_protocol_version must allow TLS 1.2 or later, because pacsd and the standbys connect with TLS 1.2 at least; \"" + v + "\" would lock them out. Leave it out, or give TLSv1.2 or TLSv1.3."
		}
		return ""
	},
	"full_page_writes": func(v string) string {
		if v == "off" {
			return "full_page_writes must stay on, because pacsd brings a former primary back with pg_rewind, which needs full page images; \"off\" is not allowed."
		}
		return ""
	},
}

// CheckParamValue checks a value given for p in settings the way PostgreSQL
// checks postgresql.conf, and returns either the value as it will be written
// to postgresql.conf (normalized) or a full sentence saying what is wrong
// (problem), never both.
//
// v is a known cty string, number or bool. Accepted are: for a Bool, on,
// off, true, false, yes, no, 1, 0 and their unambiguous prefixes, any case
// (normalized to on or off); for an Enum, one of EnumVals or a spelling
// PostgreSQL takes for one of them (such as hot_standby for wal_level), any
// case (normalized to the listed value); for an Integer or Real, a number
// (also hexadecimal, and octal for an Integer, as strtol and strtod read them;
// hexadecimal fractions are not taken), optionally
// followed by a unit if the parameter has one: B, kB, MB, GB or TB for sizes,
// us, ms, s, min, h or d for times, case-sensitive; a plain number is in
// p.Unit. The value is converted to p.Unit and rounded as PostgreSQL does
// and must lie within [p.Min, p.Max]. The normalized text keeps the unit
// the value was given in ("256MB"); a plain Integer is written as the whole
// number PostgreSQL stores. A String takes any text without line breaks.
//
// It also refuses removed and internal (read-only) parameters and values
// pacsd cannot run with (restrictedValues). It does not check the major
// version (see MinMajor, MaxMajor) nor cross-field rules.
func CheckParamValue(p Param, v cty.Value) (normalized string, problem string) {
	if p.Removed != "" {
		return "", fmt.Sprintf("%s %s.", p.Name, p.Removed)
	}
	if p.Context == "internal" {
		return "", fmt.Sprintf("%s is fixed when PostgreSQL is built or the cluster is initialised; it cannot be set.", p.Name)
	}
	text, given, problem := paramText(p, v)
	if problem != "" {
		return "", problem
	}
	switch p.Type {
	case Bool:
		normalized, problem = checkBool(p, text, given)
	case Enum:
		normalized, problem = checkEnum(p, text, given)
	case Integer, Real:
		normalized, problem = checkNumber(p, text, given)
	default:
		if strings.ContainsAny(text, "\n\r\x00") {
			return "", fmt.Sprintf("%s takes text on one line; %s has a line break or NUL character.", p.Name, given)
		}
		normalized = text
	}
	if problem != "" {
		return "", problem
	}
	if restrict := restrictedValues[strings.ToLower(p.Name)]; restrict != nil {
		if problem := restrict(normalized); problem != "" {
			return "", problem
		}
	}
	return normalized, ""
}

// paramText returns the text PostgreSQL would read for v and how to show v
// in a message (quoted when it was a string).
func paramText(p Param, v cty.Value) (text, given, problem string) {
	v, _ = v.Unmark()
	switch {
	case !v.IsKnown():
		return "", "", fmt.Sprintf("%s needs a value that is known when the file is read.", p.Name)
	case v.IsNull():
		return "", "", fmt.Sprintf("%s needs a value; null is not one.", p.Name)
	}
	switch v.Type() {
	case cty.String:
		return v.AsString(), strconv.Quote(v.AsString()), ""
	case cty.Number:
		t := formatBig(v.AsBigFloat())
		return t, t, ""
	case cty.Bool:
		if p.Type == Integer || p.Type == Real || p.Type == String {
			return "", "", fmt.Sprintf("%s takes %s; %t is not one.", p.Name, expected(p), v.True())
		}
		t := strconv.FormatBool(v.True())
		return t, t, ""
	}
	return "", "", fmt.Sprintf("%s takes %s; a %s is not one.", p.Name, expected(p), v.Type().FriendlyName())
}

// formatBig prints a number without exponent or trailing zeros.
func formatBig(f *big.Float) string {
	if f.IsInt() {
		return f.Text('f', 0)
	}
	return f.Text('g', -1)
}

// expected describes, for messages, what p takes.
func expected(p Param) string {
	switch p.Type {
	case Bool:
		return "on or off (also true/false, yes/no, 1/0)"
	case Enum:
		return "one of " + orList(p.EnumVals)
	case Integer, Real:
		kind := "an integer"
		if p.Type == Real {
			kind = "a number"
		}
		if units := unitsOf(p.Unit); units != nil {
			return fmt.Sprintf("%s in %s (for example %q), or a plain number of %s",
				units.what, plainOrList(units.names), units.example, unitWords[p.Unit])
		}
		return kind + " without a unit"
	}
	return "text"
}

// orList quotes the items and joins them as "a", "b" or "c".
func orList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return plainOrList(q)
}

// plainOrList joins the items as a, b or c.
func plainOrList(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// checkBool reads text as PostgreSQL's parse_bool does.
func checkBool(p Param, text, given string) (string, string) {
	if b, ok := parseBool(text); ok {
		if b {
			return "on", ""
		}
		return "off", ""
	}
	return "", fmt.Sprintf("%s takes %s; %s is not one.", p.Name, expected(p), given)
}

// parseBool accepts any case of true, false, yes, no and their prefixes,
// on, off and "of", 1 and 0, without surrounding space.
func parseBool(s string) (value, ok bool) {
	l := strings.ToLower(s)
	switch {
	case l == "":
		return false, false
	case strings.HasPrefix("true", l):
		return true, true
	case strings.HasPrefix("false", l):
		return false, true
	case strings.HasPrefix("yes", l):
		return true, true
	case strings.HasPrefix("no", l):
		return false, true
	case l == "on" || l == "1":
		return true, true
	case len(l) >= 2 && strings.HasPrefix("off", l), l == "0":
		return false, true
	}
	return false, false
}

// checkEnum matches text case-insensitively against the listed values and
// the hidden spellings of paramAliases.
func checkEnum(p Param, text, given string) (string, string) {
	for _, e := range p.EnumVals {
		if strings.EqualFold(e, text) {
			return e, ""
		}
	}
	if to, ok := paramAliases[strings.ToLower(p.Name)][strings.ToLower(text)]; ok {
		return to, ""
	}
	return "", fmt.Sprintf("%s takes %s; %s is not one.", p.Name, expected(p), given)
}

// unitFamily is one of PostgreSQL's two unit tables: sizes and times.
type unitFamily struct {
	what    string             // "a size" or "a time", for messages
	names   []string           // unit names, smallest first
	scale   map[string]float64 // unit name -> bytes or microseconds
	example string             // a valid value for any parameter of the family
}

var (
	sizeUnits = &unitFamily{
		what:  "a size",
		names: []string{"B", "kB", "MB", "GB", "TB"},
		scale: map[string]float64{
			"B": 1, "kB": 1 << 10, "8kB": 8 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40,
		},
		example: "256MB",
	}
	timeUnits = &unitFamily{
		what:  "a time",
		names: []string{"us", "ms", "s", "min", "h", "d"},
		scale: map[string]float64{
			"us": 1, "ms": 1e3, "s": 1e6, "min": 60e6, "h": 3600e6, "d": 86400e6,
		},
		example: "5min",
	}
	// unitWords names a base unit in messages.
	unitWords = map[string]string{
		"B": "bytes", "kB": "kilobytes", "8kB": "8kB blocks", "MB": "megabytes",
		"ms": "milliseconds", "s": "seconds", "min": "minutes",
	}
)

// unitsOf returns the family of a base unit, or nil for a unitless parameter.
func unitsOf(base string) *unitFamily {
	switch base {
	case "B", "kB", "8kB", "MB":
		return sizeUnits
	case "ms", "s", "min":
		return timeUnits
	}
	return nil
}

// toBase converts value in unit to base as PostgreSQL's convert_to_base_unit
// does: a fraction is first rounded to a whole number of the next smaller
// unit, if there is one.
func (f *unitFamily) toBase(value float64, unit, base string) (float64, bool) {
	for i, name := range f.names {
		if name != unit {
			continue
		}
		v := value * (f.scale[unit] / f.scale[base])
		if i > 0 {
			next := f.scale[f.names[i-1]] / f.scale[base]
			v = math.RoundToEven(v/next) * next
		}
		return v, true
	}
	return 0, false
}

// format prints a bound given in base units with the largest unit that
// divides it.
func (f *unitFamily) format(v float64, base string) string {
	if v <= 0 || v != math.Trunc(v) {
		return formatFloat(v)
	}
	abs := v * f.scale[base]
	for i := len(f.names) - 1; i >= 0; i-- {
		s := f.scale[f.names[i]]
		if q := abs / s; q == math.Trunc(q) && q >= 1 {
			return formatFloat(q) + f.names[i]
		}
	}
	return formatFloat(v) + base
}

// formatFloat prints f briefly, without an exponent for ordinary magnitudes.
func formatFloat(f float64) string {
	if math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// cSpace holds the characters of C's isspace in the C locale.
const cSpace = " \t\n\v\f\r"

var (
	// floatSyntax is what strtod reads in decimal, after leading space.
	floatSyntax = regexp.MustCompile(`^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?`)
	// hexSyntax is a hexadecimal whole number, after leading space.
	hexSyntax = regexp.MustCompile(`^[+-]?0[xX][0-9a-fA-F]+`)
	// intSyntax is what strtol(s, &end, 0) reads, after leading space.
	intSyntax = regexp.MustCompile(`^[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)`)
)

// scanNumber reads a number at the start of s as PostgreSQL's parse_int
// (integers: strtol, falling back to strtod at a '.' or 'e' or on overflow)
// or parse_real (strtod) do, and returns it with the rest of s.
func scanNumber(s string, integer bool) (value float64, rest string, ok bool) {
	t := strings.TrimLeft(s, cSpace)
	spaced := len(t) < len(s)
	if integer {
		m := intSyntax.FindString(t)
		after := t[len(m):]
		if m != "" && (after == "" || !strings.ContainsRune(".eE", rune(after[0]))) {
			n, err := strconv.ParseInt(m, 0, 64)
			if err == nil {
				return float64(n), after, true
			}
		}
		if m == "" && (spaced || t == "" || t[0] != '.') {
			// strtol read nothing and left its end at s, not at a '.'.
			return 0, s, false
		}
	}
	if !integer {
		// strtod reads hexadecimal too; whole numbers are enough here.
		if m := hexSyntax.FindString(t); m != "" {
			n, err := strconv.ParseInt(m, 0, 64)
			return float64(n), t[len(m):], err == nil
		}
	}
	m := floatSyntax.FindString(t)
	if m == "" {
		return 0, s, false
	}
	f, err := strconv.ParseFloat(m, 64)
	if err != nil { // out of range
		return 0, s, false
	}
	return f, t[len(m):], true
}

// checkNumber reads an Integer or Real with an optional unit, converts it to
// p.Unit and checks the range.
func checkNumber(p Param, text, given string) (string, string) {
	bad := func() (string, string) {
		return "", fmt.Sprintf("%s takes %s; %s is not one.", p.Name, expected(p), given)
	}
	value, rest, ok := scanNumber(text, p.Type == Integer)
	if !ok || math.IsNaN(value) {
		return bad()
	}
	// A unit may follow after space, and only space may follow the unit.
	rest = strings.TrimLeft(rest, cSpace)
	unit := rest
	if end := strings.IndexAny(rest, cSpace); end >= 0 {
		if strings.TrimLeft(rest[end:], cSpace) != "" {
			return bad()
		}
		unit = rest[:end]
	}
	base := value
	if unit != "" {
		family := unitsOf(p.Unit)
		if family == nil {
			return bad()
		}
		var ok bool
		if base, ok = family.toBase(value, unit, p.Unit); !ok {
			return "", unitProblem(p, family, value, unit, given)
		}
	}
	if p.Type == Integer {
		base = math.RoundToEven(base)
	}
	if base < p.Min || base > p.Max {
		return "", rangeProblem(p, given)
	}
	switch {
	case unit != "":
		return formatFloat(value) + unit, ""
	case p.Type == Integer:
		return formatFloat(base), ""
	default:
		return formatFloat(value), ""
	}
}

// unitProblem explains a unit that the parameter's family lacks.
func unitProblem(p Param, family *unitFamily, value float64, unit, given string) string {
	msg := fmt.Sprintf("%s takes %s", p.Name, expected(p))
	other := timeUnits
	if family == timeUnits {
		other = sizeUnits
	}
	for _, name := range family.names {
		if strings.EqualFold(name, unit) {
			return fmt.Sprintf("%s; %s is not one: units are case-sensitive, write %q.", msg, given, formatFloat(value)+name)
		}
	}
	for _, name := range other.names {
		if name == unit {
			return fmt.Sprintf("%s, not %s; %s is not one.", msg, other.what, given)
		}
	}
	return fmt.Sprintf("%s; %s is not one.", msg, given)
}

// rangeProblem states the bounds of p in readable units.
func rangeProblem(p Param, given string) string {
	lo, hi := formatFloat(p.Min), formatFloat(p.Max)
	if family := unitsOf(p.Unit); family != nil {
		lo, hi = family.format(p.Min, p.Unit), family.format(p.Max, p.Unit)
	}
	return fmt.Sprintf("%s must be between %s and %s; %s is outside that range.", p.Name, lo, hi, given)
}
