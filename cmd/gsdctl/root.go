package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/spf13/cobra"
)

// app holds gsdctl's global flags and streams; subcommands hang off it.
type app struct {
	addrs      []string
	timeout    time.Duration
	output     string
	secretFile string
	secret     string // the cluster secret, from --secret-file or $GSD_CLUSTER_SECRET
	tls        ctlTLS // --tls-ca, --tls-cert, --tls-key (tls.go)

	stdin          io.Reader
	stdout, stderr io.Writer
}

// run is gsdctl's main, testable: it runs one command and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	cmd := a.rootCmd()
	cmd.SetArgs(args)
	cmd.SetIn(stdin)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "gsdctl: "+describe(err))
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "Run 'gsdctl --help' for usage.")
		}
		return 1
	}
	return 0
}

// describe formats an error for the terminal, leading with the server's code.
func describe(err error) string {
	var e *client.Error
	if errors.As(err, &e) {
		msg := fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
		if e.Code == "" {
			msg = fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
		}
		if s := err.Error(); s != e.Error() {
			// Context around the server's answer (a deadline, an unknown outcome).
			msg += " [" + strings.Replace(s, e.Error(), "…", 1) + "]"
		}
		return msg
	}
	return err.Error()
}

// usageError marks errors in the command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "gsdctl",
		Short:         "Administer and inspect a gsd cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			var addrs []string
			for _, s := range a.addrs {
				if s = strings.TrimSpace(s); s != "" {
					addrs = append(addrs, s)
				}
			}
			if len(addrs) == 0 {
				return usageError{errors.New("--addr needs at least one address")}
			}
			a.addrs = addrs
			if a.timeout <= 0 {
				return usageError{errors.New("--timeout must be positive")}
			}
			if a.output != "table" && a.output != "json" {
				return usageError{fmt.Errorf("--output %q: want table or json", a.output)}
			}
			if err := a.tls.load(); err != nil {
				return err
			}
			return a.loadSecret()
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringSliceVar(&a.addrs, "addr", []string{"127.0.0.1:7070"}, "HTTP address(es) of gsd nodes, comma-separated; the next is tried when one fails")
	pf.DurationVar(&a.timeout, "timeout", 10*time.Second, "how long one command may take, retries included")
	pf.StringVarP(&a.output, "output", "o", "table", "output of status and world list: table or json")
	pf.StringVar(&a.secretFile, "secret-file", "", "file holding the cluster secret, for the admin commands of a cluster started with one (default: $"+envClusterSecret+")")
	a.tls.flags(pf)
	root.AddCommand(a.subcommands()...)
	return root
}

// subcommands lists gsdctl's commands. The bench, demo and token commands
// are added here by their own files.
func (a *app) subcommands() []*cobra.Command {
	return []*cobra.Command{
		a.statusCmd(),
		a.joinCmd(),
		a.removeCmd(),
		a.transferLeaderCmd(),
		a.snapshotCmd(),
		a.backupCmd(),
		a.worldCmd(),
		a.actCmd(),
		a.getCmd(),
		a.eventsCmd(),
		a.hashCmd(),
		a.demoCmd(),
		a.tokenCmd(),
		a.benchCmd(),
		a.sessionCmd(),
		a.flagsCmd(),
		a.drainCmd(),
		a.auditCmd(),
		a.tlsCmd(),
		a.relayCmd(),
		a.shardsCmd(),
		a.shardCmd(),
		a.placementCmd(),
	}
}

// client returns a client for --addr.
func (a *app) client() *client.Client { return a.clientFor(a.addrs) }

// clientFor returns a client for addrs, sending the cluster secret if any.
func (a *app) clientFor(addrs []string) *client.Client {
	opts := a.tls.options()
	if a.secret != "" {
		opts = append(opts, client.WithClusterSecret(a.secret))
	}
	return client.New(addrs, opts...)
}

// context bounds one command by --timeout.
func (a *app) context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), a.timeout)
}

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readArg returns s, or the contents of file f when s is "@f", or stdin when
// s is "-".
// readJSONFlag reads a --json flag's value (stdin when empty), naming
// what it reads in the error.
func (a *app) readJSONFlag(flag, what string) ([]byte, error) {
	if flag == "" {
		flag = "-"
	}
	b, err := a.readArg(flag)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return b, nil
}

func (a *app) readArg(s string) ([]byte, error) {
	switch {
	case s == "-":
		return io.ReadAll(a.stdin)
	case strings.HasPrefix(s, "@"):
		return os.ReadFile(s[1:])
	}
	return []byte(s), nil
}

// ok is the answer of commands that have nothing else to say.
var ok = map[string]bool{"ok": true}
