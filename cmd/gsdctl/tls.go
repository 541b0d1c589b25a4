package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/tlsconf"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// ctlTLS are gsdctl's TLS flags, for clusters started with TLS (issue 12).
type ctlTLS struct {
	caFile, certFile, keyFile string
	cfg                       *tls.Config // built by load; nil: plain HTTP
}

func (t *ctlTLS) flags(f *pflag.FlagSet) {
	f.StringVar(&t.caFile, "tls-ca", "", "PEM CA to trust for https:// nodes (a cluster's dev CA from 'gsdctl tls ca', or the CA of the nodes' public certificate); turns https on")
	f.StringVar(&t.certFile, "tls-cert", "", "PEM certificate of the cluster to present (with --tls-key, and --tls-ca the cluster CA), for node-only calls on clusters with mutual TLS: 'join ID' needs node ID's own")
	f.StringVar(&t.keyFile, "tls-key", "", "PEM key of --tls-cert")
}

// load builds the TLS config the flags ask for.
func (t *ctlTLS) load() error {
	switch {
	case t.certFile == "" && t.keyFile == "" && t.caFile == "":
		return nil
	case (t.certFile == "") != (t.keyFile == ""):
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	case t.caFile == "":
		return usageError{errors.New("--tls-cert needs --tls-ca, the cluster CA")}
	case t.certFile != "":
		c, err := tlsconf.LoadCluster(tlsconf.ClusterFiles{CA: t.caFile, Cert: t.certFile, Key: t.keyFile}, tlsconf.DefaultCheckEvery, nil)
		if err != nil {
			return usageError{err}
		}
		t.cfg = c.ClientConfig()
		return nil
	}
	b, err := os.ReadFile(t.caFile)
	if err != nil {
		return usageError{fmt.Errorf("--tls-ca: %w", err)}
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		return usageError{fmt.Errorf("--tls-ca %s holds no PEM certificate", t.caFile)}
	}
	t.cfg = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return nil
}

// options are the client options of the flags.
func (t *ctlTLS) options() []client.Option {
	if t.cfg == nil {
		return nil
	}
	return []client.Option{client.WithTLSConfig(t.cfg)}
}

// tlsCmd mints a development CA and node certificates for a cluster with
// TLS. Production clusters may use their own PKI: a node certificate only
// needs the URI SAN gsd://node/<id>, server and client auth.
func (a *app) tlsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Mint a development CA and node certificates for mutual TLS",
		Example: `  gsdctl tls ca --dir tls
  gsdctl tls node --dir tls --id n1 --host 127.0.0.1,localhost
  gsd --id n1 --cluster-ca tls/ca.crt --cluster-cert tls/n1.crt --cluster-key tls/n1.key`,
	}
	var (
		dir   string
		valid time.Duration
		force bool
	)
	pf := cmd.PersistentFlags()
	pf.StringVar(&dir, "dir", "gsd-tls", "directory of ca.crt, ca.key and the node files")
	pf.DurationVar(&valid, "valid", 365*24*time.Hour, "how long the certificate is valid")
	pf.BoolVar(&force, "force", false, "overwrite existing files")

	var name string
	ca := &cobra.Command{
		Use:   "ca",
		Short: "Mint a cluster CA (ECDSA P-256): DIR/ca.crt and DIR/ca.key",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			p, err := tlsconf.NewCA(name, valid)
			if err != nil {
				return usageError{err}
			}
			return a.writePair(dir, "ca", p, force)
		},
	}
	ca.Flags().StringVar(&name, "name", "gsd dev CA", "the CA's common name")

	var (
		id    string
		hosts []string
	)
	node := &cobra.Command{
		Use:   "node",
		Short: "Mint a node certificate signed by DIR/ca.*: DIR/<id>.crt and DIR/<id>.key",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var caPair tlsconf.PEMPair
			var err error
			if caPair.Cert, err = os.ReadFile(filepath.Join(dir, "ca.crt")); err != nil {
				return usageError{fmt.Errorf("the CA (gsdctl tls ca first): %w", err)}
			}
			if caPair.Key, err = os.ReadFile(filepath.Join(dir, "ca.key")); err != nil {
				return usageError{fmt.Errorf("the CA (gsdctl tls ca first): %w", err)}
			}
			p, err := tlsconf.IssueNode(caPair, tlsconf.NodeCert{ID: id, Hosts: hosts, Validity: valid})
			if err != nil {
				return usageError{err}
			}
			return a.writePair(dir, id, p, force)
		},
	}
	node.Flags().StringVar(&id, "id", "", "the node id (gsd --id), named in the URI SAN gsd://node/<id>")
	node.Flags().StringSliceVar(&hosts, "host", nil, "DNS names and IP addresses clients reach the node's HTTP port by (comma-separated), for clients that check them")
	cmd.AddCommand(ca, node)
	return cmd
}

// writePair writes dir/name.crt and dir/name.key (0600), refusing to
// overwrite unless force.
func (a *app) writePair(dir, name string, p tlsconf.PEMPair, force bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !force {
		flags |= os.O_EXCL
	}
	for _, f := range []struct {
		ext  string
		data []byte
	}{{".crt", p.Cert}, {".key", p.Key}} {
		path := filepath.Join(dir, name+f.ext)
		fh, err := os.OpenFile(path, flags, 0o600)
		if errors.Is(err, os.ErrExist) {
			return usageError{fmt.Errorf("%s exists (--force overwrites it)", path)}
		} else if err != nil {
			return err
		}
		_, err = fh.Write(f.data)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, "wrote", path)
	}
	return nil
}
