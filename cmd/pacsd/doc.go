// Command pacsd keeps the PostgreSQL primary/standby containers of a dcm4chee
// archive converged to one HCL topology file.
//
// This package is the command line and its wiring only: it parses arguments,
// calls the packages that do the work and prints their results. Subcommands
// are listed in commands (main.go); each one is a function from its arguments
// to an exit code, so that tests run them without a process.
//
// Exit codes: 0 success, 1 the command ran and found a problem (such as an
// invalid topology file), 2 wrong usage.
package main
