package main

// Hand-kept facts: what the committed dumps (PostgreSQL 15 and 17, the majors
// Debian ships) cannot show. Taken from the PostgreSQL release notes; keep
// these lists short and drop an entry once a dump of its major is committed.

// firstSupported is the oldest major pacsd supports; a parameter present in
// the oldest dump and not listed in addedAfter12 is taken to exist there.
const firstSupported = 12

// addedAfter12 gives the first major of parameters that the oldest dump (15)
// has but PostgreSQL 12 lacks.
var addedAfter12 = map[string]int{
	// PostgreSQL 13
	"autovacuum_vacuum_insert_scale_factor": 13,
	"autovacuum_vacuum_insert_threshold":    13,
	"enable_incremental_sort":               13,
	"hash_mem_multiplier":                   13,
	"ignore_invalid_pages":                  13,
	"log_min_duration_sample":               13,
	"log_parameter_max_length":              13,
	"log_parameter_max_length_on_error":     13,
	"log_statement_sample_rate":             13,
	"logical_decoding_work_mem":             13,
	"maintenance_io_concurrency":            13,
	"max_slot_wal_keep_size":                13,
	"wal_keep_size":                         13,
	"wal_skip_threshold":                    13,
	// PostgreSQL 14
	"client_connection_check_interval": 14,
	"compute_query_id":                 14,
	"debug_discard_caches":             14,
	"default_toast_compression":        14,
	"enable_async_append":              14,
	"enable_memoize":                   14,
	"huge_page_size":                   14,
	"idle_session_timeout":             14,
	"in_hot_standby":                   14,
	"log_recovery_conflict_waits":      14,
	"min_dynamic_shared_memory":        14,
	"recovery_init_sync_method":        14,
	"remove_temp_files_after_crash":    14,
	"ssl_crl_dir":                      14,
	"track_wal_io_timing":              14,
	"vacuum_failsafe_age":              14,
	"vacuum_multixact_failsafe_age":    14,
	// PostgreSQL 15
	"allow_in_place_tablespaces":       15,
	"archive_library":                  15,
	"log_startup_progress_interval":    15,
	"recovery_prefetch":                15,
	"recursive_worktable_factor":       15,
	"shared_memory_size":               15,
	"shared_memory_size_in_huge_pages": 15,
	"stats_fetch_consistency":          15,
	"wal_decode_buffer_size":           15,
}

// addedIn gives the first major of parameters the oldest dump lacks. Every
// name the newer dumps add must be here: the generator refuses to guess.
var addedIn = map[string]int{
	// PostgreSQL 16
	"createrole_self_grant":                       16,
	"debug_io_direct":                             16,
	"debug_logical_replication_streaming":         16,
	"debug_parallel_query":                        16,
	"enable_presorted_aggregate":                  16,
	"gss_accept_delegation":                       16,
	"icu_validation_level":                        16,
	"max_parallel_apply_workers_per_subscription": 16,
	"reserved_connections":                        16,
	"scram_iterations":                            16,
	"send_abort_for_crash":                        16,
	"send_abort_for_kill":                         16,
	"vacuum_buffer_usage_limit":                   16,
	// PostgreSQL 17
	"allow_alter_system":           17,
	"commit_timestamp_buffers":     17,
	"enable_group_by_reordering":   17,
	"event_triggers":               17,
	"huge_pages_status":            17,
	"io_combine_limit":             17,
	"max_notify_queue_pages":       17,
	"multixact_member_buffers":     17,
	"multixact_offset_buffers":     17,
	"notify_buffers":               17,
	"serializable_buffers":         17,
	"subtransaction_buffers":       17,
	"summarize_wal":                17,
	"sync_replication_slots":       17,
	"synchronized_standby_slots":   17,
	"trace_connection_negotiation": 17,
	"transaction_buffers":          17,
	"transaction_timeout":          17,
	"wal_summary_keep_time":        17,
	// Added by PostgreSQL 17 minor releases after 17.0 (present in the 17 dump).
	"composite_type_mismatch": 17,
	"file_extend_method":      17,
	"output_plugin_libraries": 17,
}

// lastIn gives the last major of parameters the newest dump lacks.
var lastIn = map[string]int{
	"force_parallel_mode":      15, // renamed debug_parallel_query in 16
	"lc_collate":               15,
	"lc_ctype":                 15,
	"promote_trigger_file":     15,
	"vacuum_defer_cleanup_age": 15,
	"db_user_namespace":        16,
	"old_snapshot_threshold":   16,
	"trace_recovery_messages":  16,
}

// hiddenTargets maps hidden enum spellings that are not boolean to the
// visible value the server takes them for.
var hiddenTargets = map[string]map[string]string{
	"wal_level": {"archive": "replica", "hot_standby": "replica"},
}
