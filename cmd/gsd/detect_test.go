package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/detect"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// A node with --detect flags a funnel: ten one-way transfers of items
// from one player to another.
func TestANodeWithDetectFlagsAFunnel(t *testing.T) {
	t.Parallel()
	n := startNode(t, "det", t.TempDir(), "--detect")
	n.waitLeader(t)
	c := n.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	for i := range uint64(detect.DefaultConfig().Funnel.MinTransfers) {
		item := wire.String(fmt.Sprintf("gem%d", i))
		_, err := c.Act(ctx, "arena", client.ActionRequest{Player: "feeder", Seq: 2*i + 1, Ops: []wire.Op{client.Add("feeder", "items", item)}})
		require.NoError(t, err)
		ev, err := c.Act(ctx, "arena", client.ActionRequest{Player: "feeder", Seq: 2*i + 2, Ops: []wire.Op{
			{Kind: wire.OpRemove, Entity: "feeder", Field: "items", Value: item}, client.Add("main", "items", item)}})
		require.NoError(t, err)
		require.Equal(t, wire.StatusApplied, ev.Status)
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + n.http + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return err == nil && strings.Contains(string(b), `gsd_anticheat_flags_total{detector="funnel"} 1`)
	}, time.Minute, 20*time.Millisecond)
}

func TestDetectOffStartsNothingAndItsMetricsRegisterOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	stop, err := (&detectOptions{}).start(nil, reg, slog.Default())
	require.NoError(t, err)
	stop()
	mf, err := reg.Gather()
	require.NoError(t, err)
	require.Empty(t, mf)
	_, err = detect.NewMetrics(reg)
	require.NoError(t, err)
	_, err = (&detectOptions{on: true}).start(nil, reg, slog.Default())
	require.ErrorContains(t, err, "anticheat metrics")
}

func TestDetectConfigIsReadOverTheDefaultsAndBadFilesAreUsageErrors(t *testing.T) {
	c, err := (&detectOptions{config: writeFile(t, `{"Funnel": {"MinTransfers": 3}}`)}).detectConfig()
	require.NoError(t, err)
	require.Equal(t, 3, c.Funnel.MinTransfers)
	require.Equal(t, detect.DefaultConfig().Fields, c.Fields)
	for _, bad := range []string{filepath.Join(t.TempDir(), "missing.json"), writeFile(t, `{"Speed": {"Share": 2}}`)} {
		_, err := (&detectOptions{config: bad}).start(nil, prometheus.NewRegistry(), slog.Default())
		require.ErrorAs(t, err, new(usageError))
	}
	code := run(context.Background(), []string{"--detect-config", filepath.Join(t.TempDir(), "missing.json")}, &syncBuffer{}, &syncBuffer{})
	require.NotZero(t, code)
}

func TestAnArchiveGapIsAFeedGoneForTheDetectors(t *testing.T) {
	gap := fmt.Errorf("world w seq 3: %w", store.ErrArchiveGap)
	require.ErrorIs(t, feedGone(gap), detect.ErrFeedGone)
	require.ErrorIs(t, feedGone(gap), store.ErrArchiveGap)
	other := errors.New("no such world")
	require.Equal(t, other, feedGone(other))
	require.NoError(t, feedGone(nil))
}
