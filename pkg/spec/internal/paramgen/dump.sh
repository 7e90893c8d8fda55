#!/usr/bin/env bash
# dump.sh writes the parameter catalogue of a running PostgreSQL server as
# tab-separated lines on standard output, one per parameter:
#
#   name  vartype  unit  context  min_val  max_val  enumvals(JSON)  boot_val  hidden(JSON)
#
# The first eight columns come from pg_settings. The last lists the spellings an
# enum parameter accepts although pg_settings.enumvals does not show them (such
# as "hot_standby" for wal_level, or "true" for synchronous_commit): each
# candidate is tried with ALTER SYSTEM, which validates a value the way the
# server validates postgresql.conf, and everything is reset at the end.
#
# Connect with the usual libpq variables (PGHOST, PGPORT, PGUSER) as a
# superuser of a throwaway cluster; for example, against a fresh initdb:
#
#   PGHOST=/path/to/socketdir PGUSER=postgres bash dump.sh > data/pg15.tsv
set -euo pipefail

q() { psql -X -v ON_ERROR_STOP=1 -Atq "$@"; }

major=$(q -c "select current_setting('server_version_num')::int / 10000")
echo "# server_version_num major $major: $(q -c 'select version()')"

candidates=(on off true false yes no 1 0 archive hot_standby)

# Fields are read with the unit separator: read(1) would merge the empty
# fields of a tab-separated line.
q -F $'\x1f' -c "
  select name, vartype, coalesce(unit, ''), context, coalesce(min_val, ''),
         coalesce(max_val, ''), coalesce(array_to_json(enumvals)::text, '[]'),
         coalesce(boot_val, '')
  from pg_settings order by lower(name)" |
while IFS=$'\x1f' read -r name vartype unit context min max enumvals boot; do
	hidden=()
	if [[ $vartype == enum ]]; then
		for c in "${candidates[@]}"; do
			# Skip the visible values; only hidden spellings are of interest.
			if q -c "select '$c' = any(enumvals) from pg_settings where name = '$name'" | grep -qx t; then
				continue
			fi
			if q -c "alter system set \"$name\" = '$c'" 2>/dev/null; then
				hidden+=("\"$c\"")
			fi
		done
	fi
	joined=$(IFS=,; echo "${hidden[*]-}")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t[%s]\n' \
		"$name" "$vartype" "$unit" "$context" "$min" "$max" "$enumvals" "$boot" "$joined"
done
q -c "alter system reset all"
