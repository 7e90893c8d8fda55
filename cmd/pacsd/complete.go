package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pacsd/pacsd/pkg/spec"
)

// completionHelp says how to install the completion scripts.
const completionHelp = `Prints the completion script of pacsd for bash, zsh or fish on stdout.
Commands, options and their values complete, and so do the names in the
topology file: nodes (switchover, failover, --from), clusters (conninfo,
events, pause, resume, status, --cluster) and hosts (--host), read from the
file the command line names with -f/--file, else from $PACSD_FILE, else from
` + defaultFile + `. The file is only parsed for them: no password file,
engine or network is touched, and a file that does not parse gives no names.

bash (needs the bash-completion package):
  pacsd completion bash > /usr/share/bash-completion/completions/pacsd   # everyone
  echo 'source <(pacsd completion bash)' >> ~/.bashrc                    # or yourself

zsh:
  pacsd completion zsh > /usr/local/share/zsh/site-functions/_pacsd      # everyone
  (compinit must run in ~/.zshrc: 'autoload -U compinit; compinit')

fish:
  pacsd completion fish > /usr/share/fish/vendor_completions.d/pacsd.fish   # everyone
  pacsd completion fish > ~/.config/fish/completions/pacsd.fish           # or yourself

A new shell then completes pacsd; after an upgrade of pacsd, write the
script again.`

// newCompletionCmd is 'pacsd completion SHELL'.
func newCompletionCmd(c *cli) *cobra.Command {
	shells := []string{"bash", "zsh", "fish"}
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "print the shell completion script for bash, zsh or fish",
		Long:  completionHelp,
		Example: `  source <(pacsd completion bash)
  pacsd completion zsh > "${fpath[1]}/_pacsd"
  pacsd completion fish > ~/.config/fish/completions/pacsd.fish`,
		ValidArgs: shells,
		Args: func(_ *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return fmt.Errorf("name the shell: %s", strings.Join(shells, ", "))
			case len(args) > 1:
				return fmt.Errorf("unexpected argument %q: name one shell", args[1])
			case !slices.Contains(shells, args[0]):
				return fmt.Errorf("no completion for the shell %q: give %s", args[0], strings.Join(shells, ", "))
			}
			return nil
		},
	}
	cmd.RunE = action(func(args []string) int {
		root := cmd.Root()
		var err error
		switch args[0] {
		case "bash":
			err = root.GenBashCompletionV2(c.stdout, true)
		case "zsh":
			err = root.GenZshCompletion(c.stdout)
		case "fish":
			err = root.GenFishCompletion(c.stdout, true)
		}
		if err != nil {
			fmt.Fprintf(c.stderr, "pacsd completion: while writing the %s script: %v\n", args[0], err)
			return exitProblem
		}
		return exitOK
	})
	return cmd
}

// The completion functions below complete names from the topology file of
// the command line being completed, parsed only (topologyNames). A command
// registers them as its ValidArgsFunction (completeNode, completeCluster:
// the first argument) or with RegisterFlagCompletionFunc (completeNodeFlag,
// completeClusterFlag, completeHost: a flag's value); the command must have
// the file flag (fileFlag).

// topologyNames reads the names of the topology file that cmd's -f/--file
// names (else $PACSD_FILE, else defaultFile: the flag's default) with
// spec.ReadNames: parse-only, no names when it cannot be read or parsed.
func topologyNames(cmd *cobra.Command) spec.Names {
	path, err := cmd.Flags().GetString("file")
	if err != nil {
		return spec.Names{}
	}
	names, _ := spec.ReadNames(path)
	return names
}

// completeNode completes the NODE argument: the nodes of the file, of the
// cluster --cluster names when it is given.
func completeNode(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completeNodeFlag(cmd, args, toComplete)
}

// completeNodeFlag completes a flag whose value is a node, as completeNode.
func completeNodeFlag(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	only, _ := cmd.Flags().GetString("cluster")
	var order []string
	clusters := map[string][]string{} // node name -> its clusters
	for _, cl := range topologyNames(cmd).Clusters {
		if only != "" && cl.Name != only {
			continue
		}
		for _, n := range cl.Nodes {
			if !strings.HasPrefix(n, toComplete) {
				continue
			}
			if clusters[n] == nil {
				order = append(order, n)
			}
			clusters[n] = append(clusters[n], cl.Name)
		}
	}
	var comps []cobra.Completion
	for _, n := range order {
		what := "node of cluster "
		if len(clusters[n]) > 1 {
			what = "node of clusters "
		}
		comps = append(comps, cobra.CompletionWithDesc(n, what+strings.Join(clusters[n], ", ")))
	}
	return comps, cobra.ShellCompDirectiveNoFileComp
}

// completeCluster completes the CLUSTER argument: the clusters of the file.
func completeCluster(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completeClusterFlag(cmd, args, toComplete)
}

// completeClusterFlag completes a flag whose value is a cluster (--cluster).
func completeClusterFlag(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var comps []cobra.Completion
	for _, cl := range topologyNames(cmd).Clusters {
		if strings.HasPrefix(cl.Name, toComplete) {
			comps = append(comps, cobra.CompletionWithDesc(cl.Name, "cluster of nodes "+strings.Join(cl.Nodes, ", ")))
		}
	}
	return comps, cobra.ShellCompDirectiveNoFileComp
}

// completeHost completes --host: the host blocks of the file.
func completeHost(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var comps []cobra.Completion
	for _, h := range topologyNames(cmd).Hosts {
		if strings.HasPrefix(h, toComplete) {
			comps = append(comps, cobra.CompletionWithDesc(h, "host block"))
		}
	}
	return comps, cobra.ShellCompDirectiveNoFileComp
}

// completeOneOf completes a flag whose value is one of values.
func completeOneOf(values ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var comps []cobra.Completion
		for _, v := range values {
			if strings.HasPrefix(v, toComplete) {
				comps = append(comps, v)
			}
		}
		return comps, cobra.ShellCompDirectiveNoFileComp
	}
}
