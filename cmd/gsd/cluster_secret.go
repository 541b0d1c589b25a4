package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/internal/credential"
	"github.com/spf13/pflag"
)

// EnvClusterSecret holds the cluster secret when no file is given.
const EnvClusterSecret = "GSD_CLUSTER_SECRET"

// clusterOptions are the cluster credential flags. Without a secret the
// admin and internal endpoints stay open to whoever reaches the HTTP port.
type clusterOptions struct {
	secretFile string
	ticketTTL  time.Duration
}

func (c *clusterOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&c.secretFile, "cluster-secret-file", "", "file holding the cluster secret (at least 32 printable bytes; default: $"+EnvClusterSecret+"); it guards the admin and internal endpoints and signs transfer tickets")
	f.DurationVar(&c.ticketTTL, "transfer-ticket-ttl", 0, "how long a drained connection's transfer ticket stays valid (default 30s)")
}

// secret returns the cluster secret: the file's, else the environment's,
// else nil.
func (c *clusterOptions) secret() ([]byte, error) {
	if c.ticketTTL < 0 {
		return nil, usageError{errors.New("--transfer-ticket-ttl must not be negative")}
	}
	if c.secretFile != "" {
		b, err := credential.LoadClusterSecret(c.secretFile)
		if err != nil {
			return nil, usageError{err}
		}
		return b, nil
	}
	b := []byte(strings.TrimSpace(os.Getenv(EnvClusterSecret)))
	if len(b) == 0 {
		return nil, nil // unset or empty: off
	}
	cfg := api.DefaultConfig()
	cfg.ClusterSecret = b
	if err := cfg.Validate(); err != nil {
		return nil, usageError{fmt.Errorf("$%s: %w", EnvClusterSecret, err)}
	}
	return b, nil
}
