package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/tlsconf"
	"github.com/gsd-dev/gsd/shard"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// tlsOptions are the TLS flags (issue 12), all off by default:
//   - --tls-cert/--tls-key: the HTTP/WebSocket port speaks TLS with this
//     certificate, reloaded when its files change;
//   - --cluster-ca/--cluster-cert/--cluster-key: mutual TLS between the
//     nodes: Raft (under the mux), node-to-node calls and joins need a
//     certificate of the cluster CA naming a node (gsdctl tls). The HTTP
//     port then speaks TLS too (with --tls-cert's certificate for players
//     when given, else the node's).
type tlsOptions struct {
	certFile, keyFile               string
	caFile, clusterCert, clusterKey string

	public  *tlsconf.Reloader // loaded by complete
	cluster *tlsconf.Cluster
}

func (t *tlsOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&t.certFile, "tls-cert", "", "PEM certificate (chain) of the HTTP/WebSocket port; turns TLS on there; reloaded when the file changes")
	f.StringVar(&t.keyFile, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&t.caFile, "cluster-ca", "", "PEM certificate of the cluster CA: turns on mutual TLS for Raft, node-to-node calls and joins (with --cluster-cert and --cluster-key)")
	f.StringVar(&t.clusterCert, "cluster-cert", "", "PEM certificate of this node, signed by --cluster-ca and naming the node (URI SAN gsd://node/<id>; gsdctl tls node)")
	f.StringVar(&t.clusterKey, "cluster-key", "", "PEM private key of --cluster-cert")
}

// complete loads the files the flags name. An empty *id becomes the node
// id the cluster certificate names; a different one is an error, as peers
// know a node by its certificate's id.
func (t *tlsOptions) complete(id *string, log *slog.Logger) error {
	var errs []error
	if (t.certFile == "") != (t.keyFile == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	n := 0
	for _, f := range []string{t.caFile, t.clusterCert, t.clusterKey} {
		if f != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		errs = append(errs, errors.New("--cluster-ca, --cluster-cert and --cluster-key go together"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var err error
	if t.certFile != "" {
		if t.public, err = tlsconf.NewReloader(t.certFile, t.keyFile, tlsconf.DefaultCheckEvery, log); err != nil {
			return fmt.Errorf("--tls-cert: %w", err)
		}
	}
	if n == 3 {
		files := tlsconf.ClusterFiles{CA: t.caFile, Cert: t.clusterCert, Key: t.clusterKey}
		if t.cluster, err = tlsconf.LoadCluster(files, tlsconf.DefaultCheckEvery, log); err != nil {
			return fmt.Errorf("--cluster-cert: %w", err)
		}
		switch {
		case *id == "":
			*id = t.cluster.ID()
		case *id != t.cluster.ID():
			return fmt.Errorf("--cluster-cert names node %q, but --id is %q: peers know a node by its certificate", t.cluster.ID(), *id)
		}
	}
	return nil
}

// httpTLS returns the HTTP port's TLS, or nil when it is plain.
func (t *tlsOptions) httpTLS() *tls.Config {
	switch {
	case t.cluster != nil:
		return t.cluster.HTTPServerConfig(t.public)
	case t.public != nil:
		return tlsconf.PublicServerConfig(t.public)
	}
	return nil
}

// listen wraps the HTTP listener in TLS when it is on.
func (t *tlsOptions) listen(ln net.Listener) net.Listener {
	if cfg := t.httpTLS(); cfg != nil {
		return tls.NewListener(ln, cfg)
	}
	return ln
}

// advertise returns the HTTP address the node table holds: with TLS, an
// https URL, so that peers, and players sent on (drain, transfer), use it.
func (t *tlsOptions) advertise(addr string) string {
	if t.httpTLS() == nil || strings.Contains(addr, "://") {
		return addr
	}
	return "https://" + addr
}

// peerTLS is the TLS of this node's own calls to nodes (forwarding, join,
// version reports): the cluster's mutual TLS, else the system's roots when
// only the HTTP port has TLS, else none.
func (t *tlsOptions) peerTLS() *tls.Config {
	switch {
	case t.cluster != nil:
		return t.cluster.ClientConfig()
	case t.public != nil:
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return nil
}

// clientOptions are the options of this node's own client calls.
func (t *tlsOptions) clientOptions() []client.Option {
	if cfg := t.peerTLS(); cfg != nil {
		return []client.Option{client.WithTLSConfig(cfg)}
	}
	return nil
}

// setMux turns on the mux's mutual TLS.
func (t *tlsOptions) setMux(cfg *shard.MuxConfig) {
	if t.cluster != nil {
		cfg.TLS, cfg.DialTLS = t.cluster.ServerConfig(), t.cluster.ClientConfig()
	}
}

// setEdge has the edge call peers with TLS and, with cluster TLS, admit
// node-only requests from holders of a cluster certificate only. With
// cluster TLS it also installs the peer check: from now on every
// node-to-node connection (Raft both ways, this node's calls) and every
// node-only request must come from a node in members' node table; the
// handshakes it fails are counted in gsd_tls_peers_refused_total on reg.
func (t *tlsOptions) setEdge(cfg *api.Config, members nodeTable, reg prometheus.Registerer) error {
	cfg.PeerTLS = t.peerTLS()
	if c := t.cluster; c != nil {
		cfg.PeerCert = c.PeerNode
		c.SetPeerCheck(memberCheck(c.ID(), members))
		refused := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gsd_tls_peers_refused_total",
			Help: "TLS handshakes (Raft, this node's calls) refused because the peer's cluster certificate names a node that is not a member.",
		}, func() float64 { return float64(c.Refused()) })
		if err := reg.Register(refused); err != nil {
			return fmt.Errorf("tls metrics: %w", err)
		}
	}
	return nil
}

// nodeTable is the cluster's node table as this node applied it
// (*store.Store).
type nodeTable interface {
	Node(id string) (fsm.NodeInfo, bool)
}

// memberCheck admits a peer whose node id is in the node table: a node
// removed from the cluster is refused, its certificate still valid or
// not. A node not in its own table is not in a cluster yet (fresh, or its
// join has not reached it): it admits every node of the CA, as it must
// hear from the leader that adds it.
func memberCheck(self string, nodes nodeTable) tlsconf.PeerCheck {
	return func(id string) error {
		if _, ok := nodes.Node(id); ok {
			return nil
		}
		if _, ok := nodes.Node(self); !ok {
			return nil
		}
		return errors.New("not in this node's node table")
	}
}

// reportAddr is the address the version reporter calls this node at: the
// listener's own, except when only the HTTP port has TLS, whose
// certificate names the advertised host rather than the bound address.
func (t *tlsOptions) reportAddr(local, advertise string) string {
	if t.public != nil && t.cluster == nil {
		return advertise
	}
	return local
}
