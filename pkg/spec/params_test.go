package spec

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"
)

func TestLookupParam(t *testing.T) {
	tests := []struct {
		name string
		want Param
		ok   bool
	}{
		{"shared_buffers", Param{Name: "shared_buffers", Type: Integer, Unit: "8kB", Context: "postmaster", Min: 16, Max: 1073741823, MinMajor: 12}, true},
		{"SHARED_Buffers", Param{Name: "shared_buffers", Type: Integer, Unit: "8kB", Context: "postmaster", Min: 16, Max: 1073741823, MinMajor: 12}, true},
		{"intervalstyle", Param{Name: "IntervalStyle", Type: Enum, Context: "user", EnumVals: []string{"postgres", "postgres_verbose", "sql_standard", "iso_8601"}, MinMajor: 12}, true},
		{"wal_level", Param{Name: "wal_level", Type: Enum, Context: "postmaster", EnumVals: []string{"minimal", "replica", "logical"}, MinMajor: 12}, true},
		{"jit", Param{Name: "jit", Type: Bool, Context: "user", MinMajor: 12}, true},
		{"wal_keep_size", Param{Name: "wal_keep_size", Type: Integer, Unit: "MB", Context: "sighup", Min: 0, Max: 2147483647, MinMajor: 13}, true},
		{"transaction_timeout", Param{Name: "transaction_timeout", Type: Integer, Unit: "ms", Context: "user", Min: 0, Max: 2147483647, MinMajor: 17}, true},
		{"old_snapshot_threshold", Param{Name: "old_snapshot_threshold", Type: Integer, Unit: "min", Context: "postmaster", Min: -1, Max: 86400, MinMajor: 12, MaxMajor: 16}, true},
		{"checkpoint_segments", Param{Name: "checkpoint_segments", Type: String, Removed: "was removed in PostgreSQL 9.5; use max_wal_size instead"}, true},
		{"shared_bufers", Param{}, false},
		{"dcm4chee.whatever", Param{}, false},
		{"", Param{}, false},
	}
	for _, tt := range tests {
		got, ok := LookupParam(tt.name)
		if ok != tt.ok {
			t.Errorf("LookupParam(%q) ok = %v, want %v", tt.name, ok, tt.ok)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("LookupParam(%q) mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestParamCatalogSane(t *testing.T) {
	if len(paramCatalog) < 350 {
		t.Fatalf("catalogue has %d parameters, want the whole of pg_settings", len(paramCatalog))
	}
	for i, p := range paramCatalog {
		if i > 0 && strings.ToLower(paramCatalog[i-1].Name) >= strings.ToLower(p.Name) {
			t.Errorf("catalogue not sorted at %s", p.Name)
		}
		if p.Type < Bool || p.Type > Enum || p.Context == "" || p.MinMajor < 12 {
			t.Errorf("incomplete entry %+v", p)
		}
		if (p.Type == Enum) != (len(p.EnumVals) > 0) {
			t.Errorf("%s: %s with enum values %q", p.Name, p.Type, p.EnumVals)
		}
		if p.Unit != "" && unitsOf(p.Unit) == nil {
			t.Errorf("%s: unknown unit %q", p.Name, p.Unit)
		}
		if (p.Type == Integer || p.Type == Real) && p.Min > p.Max {
			t.Errorf("%s: min %v above max %v", p.Name, p.Min, p.Max)
		}
	}
}

func TestSuggestParam(t *testing.T) {
	tests := map[string]string{
		"shared_bufers":       "shared_buffers",
		"Shared_Bufers":       "shared_buffers",
		"sharedbuffers":       "shared_buffers",
		"work_mom":            "work_mem",
		"max_wal_sender":      "max_wal_senders",
		"effective_cachesize": "effective_cache_size",
		"interval_style":      "IntervalStyle",
		"wal_keep_segment":    "",
		"completely_unknown":  "",
		"":                    "",
	}
	for name, want := range tests {
		if got := SuggestParam(name); got != want {
			t.Errorf("SuggestParam(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestManagedParam(t *testing.T) {
	type result struct {
		ControlledBy string
		Managed      bool
	}
	tests := map[string]result{
		"listen_addresses":          {"", true},
		"PORT":                      {"", true},
		"hot_standby":               {"", true},
		"primary_conninfo":          {"", true},
		"primary_slot_name":         {"", true},
		"data_directory":            {"node.data", true},
		"hba_file":                  {"", true},
		"ident_file":                {"", true},
		"config_file":               {"", true},
		"external_pid_file":         {"", true},
		"wal_log_hints":             {"", true},
		"promote_trigger_file":      {"", true},
		"max_slot_wal_keep_size":    {"replication.max_slot_wal", true},
		"synchronous_standby_names": {"replication.synchronous", true},
		"recovery_target":           {"", true},
		"recovery_target_time":      {"", true},
		"recovery_target_timeline":  {"", true},
		"wal_level":                 {"", false},
		"full_page_writes":          {"", false},
		"max_wal_senders":           {"", false},
		"max_replication_slots":     {"", false},
		"archive_command":           {"", false},
		"restore_command":           {"", false},
		"shared_buffers":            {"", false},
		"recovery_min_apply_delay":  {"", false},
	}
	for name, want := range tests {
		by, managed := ManagedParam(name)
		if diff := cmp.Diff(want, result{by, managed}); diff != "" {
			t.Errorf("ManagedParam(%q) mismatch (-want +got):\n%s", name, diff)
		}
	}
	for name := range managedParams {
		if _, ok := LookupParam(name); !ok {
			t.Errorf("managed parameter %s is not in the catalogue", name)
		}
	}
}

func TestCheckParamValue(t *testing.T) {
	type result struct {
		Normalized, Problem string
	}
	ok := func(normalized string) result { return result{Normalized: normalized} }
	bad := func(problem string) result { return result{Problem: problem} }
	s, n, b := cty.StringVal, cty.NumberIntVal, cty.BoolVal
	tests := []struct {
		param string
		value cty.Value
		want  result
	}{
		// Sizes, in a base unit of 8kB.
		{"shared_buffers", s("256MB"), ok("256MB")},
		{"shared_buffers", s("1GB"), ok("1GB")},
		{"shared_buffers", s(" 256 MB "), ok("256MB")},
		{"shared_buffers", s("256MB\t"), ok("256MB")},
		{"shared_buffers", s("1.5GB"), ok("1.5GB")},
		{"shared_buffers", s("131072kB"), ok("131072kB")},
		{"shared_buffers", s("134217728B"), ok("134217728B")},
		{"shared_buffers", s("16384"), ok("16384")},
		{"shared_buffers", n(16384), ok("16384")},
		{"shared_buffers", s("0x4000"), ok("16384")},
		{"shared_buffers", s("128kB"), ok("128kB")},
		{"shared_buffers", s("256mb"), bad(`shared_buffers takes a size in B, kB, MB, GB or TB (for example "256MB"), or a plain number of 8kB blocks; "256mb" is not one: units are case-sensitive, write "256MB".`)},
		{"shared_buffers", s("256 MiB"), bad(`shared_buffers takes a size in B, kB, MB, GB or TB (for example "256MB"), or a plain number of 8kB blocks; "256 MiB" is not one.`)},
		{"shared_buffers", s("256MB x"), bad(`shared_buffers takes a size in B, kB, MB, GB or TB (for example "256MB"), or a plain number of 8kB blocks; "256MB x" is not one.`)},
		{"shared_buffers", s("5min"), bad(`shared_buffers takes a size in B, kB, MB, GB or TB (for example "256MB"), or a plain number of 8kB blocks, not a time; "5min" is not one.`)},
		{"shared_buffers", s("lots"), bad(`shared_buffers takes a size in B, kB, MB, GB or TB (for example "256MB"), or a plain number of 8kB blocks; "lots" is not one.`)},
		{"shared_buffers", s(""), bad(`shared_buffers takes a size in B, kB, MB, GB or TB (for example "256MB"), or a plain number of 8kB blocks; "" is not one.`)},
		{"shared_buffers", s("64kB"), bad(`shared_buffers must be between 128kB and 8589934584kB; "64kB" is outside that range.`)},
		{"shared_buffers", s("16TB"), bad(`shared_buffers must be between 128kB and 8589934584kB; "16TB" is outside that range.`)},
		{"shared_buffers", b(true), bad(`shared_buffers takes a size in B, kB, MB, GB or TB (for example "256MB"), or a plain number of 8kB blocks; true is not one.`)},
		// Sizes in kB and MB; fractions round to the next smaller unit first.
		{"work_mem", s("65536B"), ok("65536B")},
		{"work_mem", s("1e3"), ok("1000")},
		{"work_mem", s("010"), bad(`work_mem must be between 64kB and 2147483647kB; "010" is outside that range.`)},
		{"work_mem", s("08"), bad(`work_mem takes a size in B, kB, MB, GB or TB (for example "256MB"), or a plain number of kilobytes; "08" is not one.`)},
		{"work_mem", s("63.9kB"), ok("63.9kB")},
		{"work_mem", s("63.4kB"), bad(`work_mem must be between 64kB and 2147483647kB; "63.4kB" is outside that range.`)},
		{"max_wal_size", s("4GB"), ok("4GB")},
		{"max_wal_size", s("1MB"), bad(`max_wal_size must be between 2MB and 2147483647MB; "1MB" is outside that range.`)},
		{"log_parameter_max_length", s("1kB"), ok("1kB")},
		{"log_parameter_max_length", n(-1), ok("-1")},
		// Times in ms, s and min.
		{"statement_timeout", s("30s"), ok("30s")},
		{"statement_timeout", s("1.5s"), ok("1.5s")},
		{"statement_timeout", s("1500us"), ok("1500us")},
		{"statement_timeout", s("2h"), ok("2h")},
		{"statement_timeout", s("1 d"), ok("1d")},
		{"statement_timeout", n(0), ok("0")},
		{"statement_timeout", s("1S"), bad(`statement_timeout takes a time in us, ms, s, min, h or d (for example "5min"), or a plain number of milliseconds; "1S" is not one: units are case-sensitive, write "1s".`)},
		{"statement_timeout", s("5 sec"), bad(`statement_timeout takes a time in us, ms, s, min, h or d (for example "5min"), or a plain number of milliseconds; "5 sec" is not one.`)},
		{"statement_timeout", s("64MB"), bad(`statement_timeout takes a time in us, ms, s, min, h or d (for example "5min"), or a plain number of milliseconds, not a size; "64MB" is not one.`)},
		{"statement_timeout", s("-1"), bad(`statement_timeout must be between 0 and 2147483647ms; "-1" is outside that range.`)},
		{"checkpoint_timeout", s("15min"), ok("15min")},
		{"checkpoint_timeout", s("29s"), bad(`checkpoint_timeout must be between 30s and 1d; "29s" is outside that range.`)},
		{"checkpoint_timeout", s("29999ms"), ok("29999ms")},
		{"checkpoint_timeout", s("29499ms"), bad(`checkpoint_timeout must be between 30s and 1d; "29499ms" is outside that range.`)},
		{"log_rotation_age", s("1d"), ok("1d")},
		{"log_rotation_age", s("90s"), ok("90s")},
		{"log_min_duration_statement", n(-1), ok("-1")},
		// Plain integers; PostgreSQL rounds a fraction half to even.
		{"join_collapse_limit", n(16), ok("16")},
		{"join_collapse_limit", s("16"), ok("16")},
		{"join_collapse_limit", cty.NumberFloatVal(2.5), ok("2")},
		{"join_collapse_limit", s("1.5"), ok("2")},
		{"join_collapse_limit", n(0), bad(`join_collapse_limit must be between 1 and 2147483647; 0 is outside that range.`)},
		{"join_collapse_limit", n(1 << 40), bad(`join_collapse_limit must be between 1 and 2147483647; 1099511627776 is outside that range.`)},
		{"join_collapse_limit", s("16MB"), bad(`join_collapse_limit takes an integer without a unit; "16MB" is not one.`)},
		{"join_collapse_limit", s("sixteen"), bad(`join_collapse_limit takes an integer without a unit; "sixteen" is not one.`)},
		{"join_collapse_limit", s(" .5"), bad(`join_collapse_limit takes an integer without a unit; " .5" is not one.`)},
		{"max_connections", n(200), ok("200")},
		// Reals, with and without a unit.
		{"random_page_cost", cty.NumberFloatVal(1.1), ok("1.1")},
		{"random_page_cost", s("1.1"), ok("1.1")},
		{"random_page_cost", s("-1"), bad(`random_page_cost must be between 0 and 1.79769e+308; "-1" is outside that range.`)},
		{"random_page_cost", s("0x10"), ok("16")},
		{"random_page_cost", s("fast"), bad(`random_page_cost takes a number without a unit; "fast" is not one.`)},
		{"checkpoint_completion_target", cty.NumberFloatVal(0.9), ok("0.9")},
		{"checkpoint_completion_target", cty.NumberFloatVal(1.5), bad(`checkpoint_completion_target must be between 0 and 1; 1.5 is outside that range.`)},
		{"vacuum_cost_delay", s("1.5ms"), ok("1.5ms")},
		{"vacuum_cost_delay", s("500us"), ok("500us")},
		{"vacuum_cost_delay", n(2), ok("2")},
		{"vacuum_cost_delay", s("1s"), bad(`vacuum_cost_delay must be between 0 and 100ms; "1s" is outside that range.`)},
		// Booleans.
		{"jit", b(false), ok("off")},
		{"jit", b(true), ok("on")},
		{"jit", s("on"), ok("on")},
		{"jit", s("OFF"), ok("off")},
		{"jit", s("of"), ok("off")},
		{"jit", s("yes"), ok("on")},
		{"jit", s("n"), ok("off")},
		{"jit", s("tr"), ok("on")},
		{"jit", s("False"), ok("off")},
		{"jit", s("1"), ok("on")},
		{"jit", n(0), ok("off")},
		{"jit", s("o"), bad(`jit takes on or off (also true/false, yes/no, 1/0); "o" is not one.`)},
		{"jit", s(" on"), bad(`jit takes on or off (also true/false, yes/no, 1/0); " on" is not one.`)},
		{"jit", n(2), bad(`jit takes on or off (also true/false, yes/no, 1/0); 2 is not one.`)},
		{"jit", s("enabled"), bad(`jit takes on or off (also true/false, yes/no, 1/0); "enabled" is not one.`)},
		// Enums, including spellings pg_settings does not list.
		{"log_statement", s("ddl"), ok("ddl")},
		{"log_statement", s("DDL"), ok("ddl")},
		{"log_statement", s("some"), bad(`log_statement takes one of "none", "ddl", "mod" or "all"; "some" is not one.`)},
		{"default_transaction_isolation", s("Read Committed"), ok("read committed")},
		{"IntervalStyle", s("ISO_8601"), ok("iso_8601")},
		{"synchronous_commit", b(false), ok("off")},
		{"synchronous_commit", s("remote_apply"), ok("remote_apply")},
		{"synchronous_commit", s("yes"), ok("on")},
		{"huge_pages", s("try"), ok("try")},
		{"ssl_max_protocol_version", s(""), ok("")},
		{"ssl_max_protocol_version", s("TLSv1.1"), bad(`ssl_max_protocol_version must allow TLS 1.2 or later, because pacsd and the standbys connect with TLS 1.2 at least; "TLSv1.1" would lock them out. Leave it out, or give TLSv1.2 or TLSv1.3.`)},
		{"ssl_max_protocol_version", s("TLSv1.3"), ok("TLSv1.3")},
		{"wal_level", s("replica"), ok("replica")},
		{"wal_level", s("logical"), ok("logical")},
		{"wal_level", s("hot_standby"), ok("replica")},
		{"wal_level", s("archive"), ok("replica")},
		{"wal_level", s("minimal"), bad(`wal_level must be replica or logical, because standbys stream WAL from the primary; "minimal" is not allowed.`)},
		{"wal_level", s("MINIMAL"), bad(`wal_level must be replica or logical, because standbys stream WAL from the primary; "minimal" is not allowed.`)},
		{"wal_level", b(true), bad(`wal_level takes one of "minimal", "replica" or "logical"; true is not one.`)},
		{"full_page_writes", b(false), bad(`full_page_writes must stay on, because pacsd brings a former primary back with pg_rewind, which needs full page images; "off" is not allowed.`)},
		{"full_page_writes", s("on"), ok("on")},
		{"ssl", s("off"), ok("off")},
		{"ssl", b(false), ok("off")},
		{"ssl", b(true), ok("on")},
		{"SSL", s("On"), ok("on")},
		{"ssl_cert_file", s("server.crt"), ok("server.crt")},
		// Strings.
		{"search_path", s(`"$user", public, pacs`), ok(`"$user", public, pacs`)},
		{"application_name", n(5), ok("5")},
		{"timezone", s("Europe/Vienna"), ok("Europe/Vienna")},
		{"archive_command", s("cp %p /archive/%f"), ok("cp %p /archive/%f")},
		{"archive_command", s("cp %p\n/archive/%f"), bad(`archive_command takes text on one line; "cp %p\n/archive/%f" has a line break or NUL character.`)},
		{"application_name", b(true), bad(`application_name takes text; true is not one.`)},
		// Removed and read-only parameters.
		{"checkpoint_segments", n(8), bad(`checkpoint_segments was removed in PostgreSQL 9.5; use max_wal_size instead.`)},
		{"wal_keep_segments", n(8), bad(`wal_keep_segments was removed in PostgreSQL 13; pacsd keeps WAL for standbys with replication slots, bounded by replication.max_slot_wal.`)},
		{"standby_mode", s("on"), bad(`standby_mode was removed in PostgreSQL 12 together with recovery.conf; pacsd marks standbys with standby.signal itself.`)},
		{"trigger_file", s("/var/lib/postgresql/data/failover"), bad(`trigger_file was removed in PostgreSQL 12 together with recovery.conf; pacsd promotes a standby with pg_promote().`)},
		{"block_size", n(8192), bad(`block_size is fixed when PostgreSQL is built or the cluster is initialised; it cannot be set.`)},
		// Values that are no value.
		{"work_mem", cty.NullVal(cty.String), bad(`work_mem needs a value; null is not one.`)},
		{"work_mem", cty.UnknownVal(cty.String), bad(`work_mem needs a value that is known when the file is read.`)},
		{"work_mem", cty.ListValEmpty(cty.String), bad(`work_mem takes a size in B, kB, MB, GB or TB (for example "256MB"), or a plain number of kilobytes; a list of string is not one.`)},
		{"work_mem", s("64MB").Mark("sensitive"), ok("64MB")},
	}
	for _, tt := range tests {
		p, found := LookupParam(tt.param)
		if !found {
			t.Errorf("LookupParam(%q) found nothing", tt.param)
			continue
		}
		norm, problem := CheckParamValue(p, tt.value)
		if diff := cmp.Diff(tt.want, result{norm, problem}); diff != "" {
			t.Errorf("CheckParamValue(%s, %#v) mismatch (-want +got):\n%s", tt.param, tt.value, diff)
		}
	}
}

// TestCheckParamValueAcceptsEveryParam gives every settable parameter a value
// it takes (its maximum, its last enum value in upper case, off, text).
func TestCheckParamValueAcceptsEveryParam(t *testing.T) {
	for _, p := range paramCatalog {
		var v cty.Value
		switch p.Type {
		case Bool:
			v = cty.False
		case Enum:
			v = cty.StringVal(strings.ToUpper(p.EnumVals[len(p.EnumVals)-1]))
		case Integer, Real:
			v = cty.NumberFloatVal(p.Max)
		default:
			v = cty.StringVal("x")
		}
		_, problem := CheckParamValue(p, v)
		if p.Context == "internal" || restrictedValues[strings.ToLower(p.Name)] != nil {
			continue
		}
		if problem != "" {
			t.Errorf("%s: %s", p.Name, problem)
		}
	}
}
