package tlsconf

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// caBundle is the cluster's CA bundle, read again when its file changes
// (size or modification time), looked at on a handshake at most once per
// every. A changed file that holds no certificate keeps the previous
// bundle and is logged; the next look tries again. To rotate the CA, put
// the old and the new CA in the file, then the nodes' new certificates,
// then drop the old CA.
type caBundle struct {
	file  string
	every time.Duration
	log   *slog.Logger
	pool  atomic.Pointer[x509.CertPool]

	mu      sync.Mutex
	stamp   fileStamp
	checked time.Time
}

func newCABundle(file string, every time.Duration, log *slog.Logger) (*caBundle, error) {
	b := &caBundle{file: file, every: every, log: log}
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	if err := b.load(fileStamp{size: fi.Size(), mod: fi.ModTime()}); err != nil {
		return nil, err
	}
	b.checked = time.Now()
	return b, nil
}

// roots returns the current bundle, reading the file again first when it
// changed. The same pool is returned until it does.
func (b *caBundle) roots() *x509.CertPool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if now.Sub(b.checked) < b.every {
		return b.pool.Load()
	}
	b.checked = now
	fi, err := os.Stat(b.file)
	if err != nil {
		b.log.Warn("tls: cluster CA file unreadable; keeping the loaded bundle", "ca", b.file, "err", err)
		return b.pool.Load()
	}
	stamp := fileStamp{size: fi.Size(), mod: fi.ModTime()}
	if stamp == b.stamp {
		return b.pool.Load()
	}
	if err := b.load(stamp); err != nil {
		b.log.Warn("tls: changed cluster CA does not load; keeping the loaded bundle", "ca", b.file, "err", err)
		return b.pool.Load()
	}
	b.log.Info("tls: cluster CA reloaded", "ca", b.file)
	return b.pool.Load()
}

// load reads the bundle; the caller holds b.mu (or owns b).
func (b *caBundle) load(stamp fileStamp) error {
	pem, err := os.ReadFile(b.file)
	if err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%w: cluster CA %s holds no certificate", ErrBadPEM, b.file)
	}
	b.pool.Store(pool)
	b.stamp = stamp
	return nil
}
