// Command pacsd keeps the PostgreSQL primary/standby containers of a dcm4chee
// archive converged to one HCL topology file.
//
// This package is the command line and its wiring only: it parses arguments,
// calls the packages that do the work and prints their results. The
// subcommands are cobra commands, each made by a newXCmd constructor in its
// own file and listed in commands (main.go, which says how to add one); each
// prints its own output and returns an exit code, and run is the one entry
// point, so that tests run the command line in memory, shell completion
// requests (__complete) included.
//
// Exit codes: 0 success, 1 the command ran and found a problem (such as an
// invalid topology file), 2 wrong usage (plan: changes pending), 3 fmt
// --check on a file that is not formatted.
package main
