package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitProblem = 1
	exitUsage   = 2
)

// defaultFile is the topology file used when neither --file nor PACSD_FILE is given.
const defaultFile = "/etc/pacsd/pacs.hcl"

// cli is what a subcommand may use of its process: arguments aside, its output
// streams and environment, so that tests can run it in memory.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// commands are the subcommands, in the order help lists them.
//
// Adding a command takes a file and a line. The file (restart.go, say)
// holds the command's constructor:
//
//	func newRestartCmd(c *cli) *cobra.Command {
//		cmd := &cobra.Command{
//			Use:     "restart NODE [-f FILE] [--cluster NAME]", // its name, then its synopsis
//			Short:   "restart NODE's PostgreSQL",              // one line, for 'pacsd help'
//			Long:    `...`,                                    // what it does, its exit codes
//			Example: "  pacsd restart db2 -f /etc/pacsd/pacs.hcl",
//			Args:    oneNode, // or noArgs, atMostOne("cluster")
//		}
//		nf := c.nodeFlags(cmd) // -f/--file and --cluster; NODE, --cluster completed from the file
//		force := cmd.Flags().Bool("force", false, "...") // its other flags
//		cmd.RunE = action(func(args []string) int {
//			t, code, ok := c.nodeTarget(cmd.Name(), nf, args[0])
//			if !ok {
//				return code
//			}
//			... // print to c.stdout and c.stderr
//			return exitOK
//		})
//		return cmd
//	}
//
// and the line is newRestartCmd(c) in the list below. A command without
// NODE takes the file flag with path := c.fileFlag(cmd), and completes a
// CLUSTER argument with ValidArgsFunction: completeCluster (complete.go has
// the other completion functions). Flags and arguments are parsed before
// the body runs; usage errors (an unknown flag, Args refusing the
// arguments) are printed by run, once, with the synopsis. The body prints
// its own output and errors and returns the exit code. TestHelpEveryCommand
// requires Short, Long and an Example that runs the command.
func commands(c *cli) []*cobra.Command {
	return []*cobra.Command{
		newValidateCmd(c),
		newPlanCmd(c),
		newApplyCmd(c),
		newSwitchoverCmd(c),
		newFailoverCmd(c),
		newRestartCmd(c),
		newReinitCmd(c),
		newAdoptCmd(c),
		newRunCmd(c),
		newConninfoCmd(c),
		newStatusCmd(c),
		newEventsCmd(c),
		newPauseCmd(c),
		newResumeCmd(c),
		newFmtCmd(c),
		newSystemdDropInCmd(c),
		newVersionCmd(c),
		newCompletionCmd(c),
	}
}

func init() {
	cobra.EnableCommandSorting = false // help lists the commands in the order above
}

func main() {
	os.Exit(run(os.Args[1:], &cli{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}))
}

// run runs the subcommand args name and returns the exit code.
func run(args []string, c *cli) int {
	root := newRootCmd(c)
	root.SetArgs(singleDashLong(root, args))
	cmd, err := root.ExecuteC()
	var code exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	}
	usageError(c.stderr, cmd, err)
	return exitUsage
}

// exitError carries the exit code of a command out of cobra; the command
// has said what went wrong.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// action makes body, which prints its own output and errors and returns the
// exit code, the RunE of a command.
func action(body func(args []string) int) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		if code := body(args); code != exitOK {
			return exitError(code)
		}
		return nil
	}
}

// usageError says on w what was wrong with the command line of cmd, once,
// with its synopsis and where to read more.
func usageError(w io.Writer, cmd *cobra.Command, err error) {
	hint := fmt.Sprintf("Run '%s --help' for its options and examples.", cmd.CommandPath())
	if !cmd.HasParent() || cmd.Name() == "help" {
		hint = "Run 'pacsd help' for the commands, 'pacsd help COMMAND' for one of them."
	}
	fmt.Fprintf(w, "%s: %v\nUsage: %s\n%s\n", cmd.CommandPath(), strings.TrimRight(err.Error(), "\n"), cmd.UseLine(), hint)
}

// helpTemplate is the text of 'pacsd help [COMMAND]' and --help, on stdout.
const helpTemplate = `Usage: {{.UseLine}}
{{with (or .Long .Short)}}
{{. | trimTrailingWhitespaces}}
{{end}}{{if .HasAvailableSubCommands}}
Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}
{{end}}{{if .HasAvailableLocalFlags}}
Options:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}
{{end}}{{if .HasExample}}
Examples:
{{.Example}}
{{end}}{{if .HasAvailableSubCommands}}
The topology file is --file (-f), else $PACSD_FILE, else ` + defaultFile + `.
Run 'pacsd help COMMAND' or 'pacsd COMMAND --help' for the options and examples of a command.
{{end}}`

// newRootCmd is pacsd and its subcommands, writing to c's streams.
func newRootCmd(c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:   "pacsd COMMAND [OPTIONS]",
		Short: "keep the PostgreSQL primary/standby containers of a dcm4chee archive converged to one HCL file",
		Long: `pacsd keeps the PostgreSQL primary/standby containers of a dcm4chee DICOM
archive converged to one HCL topology file: it creates the containers, builds
the standbys, puts back what drifts, and switches or fails over.

Exit codes: 0 success, 1 the command ran and found a problem (such as an
invalid topology file), 2 wrong usage, and for plan: changes are pending;
fmt --check exits 3 for a file that is not formatted.`,
		Example: `  pacsd validate -f /etc/pacsd/pacs.hcl
  pacsd plan
  pacsd help switchover
  source <(pacsd completion bash)`,
		Version:           versionString(),
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: cobra.NoFileCompletions, // the commands' names only
		SilenceErrors:     true,
		SilenceUsage:      true,
		// Without a command: the help, on stderr, and exit 2.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q%s", args[0], suggest(cmd, args[0]))
			}
			cmd.SetOut(c.stderr)
			_ = cmd.Help()
			return exitError(exitUsage)
		},
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true}, // ours: newCompletionCmd
	}
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetHelpTemplate(helpTemplate)
	root.SetVersionTemplate(versionText())
	root.Flags().BoolP("version", "v", false, "print the version of pacsd, as 'pacsd version' does")
	root.SetHelpCommand(newHelpCmd())
	for _, cmd := range commands(c) {
		cmd.DisableFlagsInUseLine = true // the synopsis in Use names them
		root.AddCommand(cmd)
	}
	root.DisableFlagsInUseLine = true
	root.InitDefaultHelpCmd() // now, not when it runs: singleDashLong finds it
	return root
}

// suggest is cobra's "Did you mean" for an unknown command name.
func suggest(root *cobra.Command, name string) string {
	if s := root.SuggestionsFor(name); len(s) > 0 {
		return fmt.Sprintf("; did you mean %q?", s[0])
	}
	return ""
}

// newHelpCmd is 'pacsd help [COMMAND]'.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "show the help of pacsd, or of COMMAND: what it does, its options, examples",
		Long: `Shows what COMMAND does, its options and examples (as 'pacsd COMMAND --help'
does), or without COMMAND the list of commands.`,
		Example: `  pacsd help
  pacsd help switchover`,
		Args:                  atMostOne("command"),
		DisableFlagsInUseLine: true,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, sub := range cmd.Root().Commands() {
				if (sub.IsAvailableCommand() || sub == cmd) && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			target := root
			if len(args) == 1 {
				target = nil
				for _, sub := range root.Commands() {
					if sub.Name() == args[0] && (sub.IsAvailableCommand() || sub == cmd) {
						target = sub
					}
				}
				if target == nil {
					return fmt.Errorf("unknown command %q%s", args[0], suggest(root, args[0]))
				}
			}
			target.InitDefaultHelpFlag()
			target.SetOut(cmd.OutOrStdout())
			return target.Help()
		},
	}
}

// fileFlag registers -f and --file on cmd, defaulting to $PACSD_FILE, else
// defaultFile, and completed with .hcl files.
func (c *cli) fileFlag(cmd *cobra.Command) *string {
	def := c.getenv("PACSD_FILE")
	if def == "" {
		def = defaultFile
	}
	path := cmd.Flags().StringP("file", "f", def, "topology `FILE` (env PACSD_FILE)")
	_ = cmd.MarkFlagFilename("file", "hcl")
	return path
}

// noArgs refuses positional arguments.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q", args[0])
	}
	return nil
}

// atMostOne accepts one argument or none, such as a cluster (what).
func atMostOne(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > 1 {
			return fmt.Errorf("unexpected argument %q: name one %s", args[1], what)
		}
		return nil
	}
}

// oneNode requires the NODE argument.
func oneNode(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return fmt.Errorf("name the node, such as 'pacsd %s db2'", cmd.Name())
	case len(args) > 1:
		return fmt.Errorf("unexpected argument %q: name one node", args[1])
	}
	return nil
}

// singleDashLong returns args with "-name" and "-name=value" written
// "--name", where name is a long flag of the command args run (or of
// pacsd itself before the command's name), as the standard flag package
// read them before pacsd's flags were POSIX-style: 'pacsd fmt -check' and
// 'pacsd validate -json' keep working. A value of a flag is left alone, and
// so is everything after "--". Every other one-dash word of more than one
// letter is read as a long option, as the flag package did: an unknown one
// is refused, never taken for a short option with its value. The command
// line of a shell completion request (__complete) is read the same way, but
// for the word being completed.
func singleDashLong(root *cobra.Command, args []string) []string {
	out := append([]string{}, args...) // never nil: cobra would read os.Args
	i, end := 0, len(out)
	if len(out) > 0 && (out[0] == cobra.ShellCompRequestCmd || out[0] == cobra.ShellCompNoDescRequestCmd) {
		i, end = 1, len(out)-1 // the word being completed is left as typed
	}
	root.InitDefaultHelpFlag()
	flags := root.Flags()
	for ; i < end; i++ {
		a := out[i]
		if !strings.HasPrefix(a, "-") {
			sub, _, err := root.Find([]string{a})
			if err != nil || sub == root {
				return out
			}
			sub.InitDefaultHelpFlag()
			flags = sub.Flags()
			i++
			break
		}
		out[i] = longFlag(a)
	}
	for ; i < end; i++ {
		a := out[i]
		if a == "--" {
			break
		}
		out[i] = longFlag(a)
		if takesValue(flags, out[i]) {
			i++
		}
	}
	return out
}

// longFlag is a written "--name" when it is "-name" or "-name=value", as
// the standard flag package read every one-dash word of more than one
// letter: an unknown "-fix" is then refused as the unknown option --fix,
// never read as "-f ix" (the file "ix"). Else a.
func longFlag(a string) string {
	if len(a) < 3 || a[0] != '-' || a[1] == '-' {
		return a
	}
	return "-" + a
}

// takesValue reports whether a is a flag of fs, "--name" or "-n", whose
// value is the next argument.
func takesValue(fs *pflag.FlagSet, a string) bool {
	var f *pflag.Flag
	switch {
	case strings.HasPrefix(a, "--") && !strings.Contains(a, "="):
		f = fs.Lookup(a[2:])
	case len(a) == 2 && a[0] == '-' && a[1] != '-':
		f = fs.ShorthandLookup(a[1:])
	}
	return f != nil && f.NoOptDefVal == ""
}
