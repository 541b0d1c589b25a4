package tlsconf

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultCheckEvery is how often a Reloader looks at its files at most:
// one stat of each per second, whatever the handshake rate.
const DefaultCheckEvery = time.Second

// Reloader serves a certificate and key from files and reloads them when
// either file changes (size or modification time), checked on a handshake
// at most once per CheckEvery. A change that does not load (a half-written
// pair, a key that does not match) keeps the previous certificate and is
// logged; the next check tries again.
type Reloader struct {
	certFile, keyFile string
	every             time.Duration
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
}

type fileStamp struct {
	size int64
	mod  time.Time
}

// NewReloader loads certFile and keyFile. every <= 0 checks them on every
// handshake.
func NewReloader(certFile, keyFile string, every time.Duration, log *slog.Logger) (*Reloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%w: a certificate file and a key file are both required", ErrBadPEM)
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, every: every, log: log}
	stamp, err := r.stat()
	if err != nil {
		return nil, err
	}
	if err := r.load(stamp); err != nil {
		return nil, err
	}
	r.checked = time.Now()
	return r, nil
}

// Certificate returns the current certificate, reloading it first when
// its files changed.
func (r *Reloader) Certificate() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.checked) < r.every {
		return r.cert
	}
	r.checked = now
	stamp, err := r.stat()
	if err != nil {
		r.log.Warn("tls: certificate files unreadable; keeping the loaded certificate", "cert", r.certFile, "err", err)
		return r.cert
	}
	if stamp == r.stamp {
		return r.cert
	}
	if err := r.load(stamp); err != nil {
		r.log.Warn("tls: changed certificate does not load; keeping the loaded one", "cert", r.certFile, "err", err)
		return r.cert
	}
	r.log.Info("tls: certificate reloaded", "cert", r.certFile)
	return r.cert
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate.
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

func (r *Reloader) stat() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return s, err
		}
		s[i] = fileStamp{size: fi.Size(), mod: fi.ModTime()}
	}
	return s, nil
}

// load reads the pair; the caller holds r.mu (or owns r).
func (r *Reloader) load(stamp [2]fileStamp) error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("%w: %s and %s: %v", ErrBadPEM, r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &c, stamp
	return nil
}

// PublicServerConfig is the HTTP/WebSocket port's TLS: r's certificate,
// TLS 1.2 at least.
func PublicServerConfig(r *Reloader) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}
