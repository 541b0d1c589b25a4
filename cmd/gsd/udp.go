package main

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/gsd-dev/gsd/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// udpOptions are the UDP input lane's flags; with no address it stays off.
type udpOptions struct {
	addr      string
	advertise string
}

func (u *udpOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&u.addr, "udp-addr", "", "address the UDP input lane listens on (default: off; see docs/PROTOCOL.md)")
	f.StringVar(&u.advertise, "udp-advertise", "", "UDP address players send to, given in the play welcome (default: --udp-addr; an unspecified host means the WebSocket's host)")
}

// start serves the UDP lane on edge when --udp-addr is set; nil when off.
func (u *udpOptions) start(edge *api.Server, reg prometheus.Registerer, log *slog.Logger) (*api.UDP, error) {
	if u.addr == "" {
		return nil, nil
	}
	pc, err := net.ListenPacket("udp", u.addr)
	if err != nil {
		return nil, fmt.Errorf("udp lane: %w", err)
	}
	cfg := api.DefaultUDPConfig()
	cfg.Advertise = u.advertise
	lane, err := edge.ServeUDP(pc, cfg, reg)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("udp lane: %w", err)
	}
	log.Info("udp input lane listening", "addr", lane.Addr().String(), "advertise", u.advertise)
	return lane, nil
}

// closeUDP stops the lane, if any.
func closeUDP(lane *api.UDP, log *slog.Logger) {
	if lane == nil {
		return
	}
	if err := lane.Close(); err != nil {
		log.Warn("udp lane close", "err", err)
	}
}
