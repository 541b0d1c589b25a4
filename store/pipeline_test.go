package store

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// The store's raft transport replicates without pipelining: raft's
// replication then sends each AppendEntries synchronously, under the
// transport's timeout, instead of through the pipeline that can deadlock
// (raftMaxRPCsInFlight).
func TestRaftTransportDoesNotPipelineReplication(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	s := c.leader()
	_, err := s.transport.AppendEntriesPipeline("n2", raft.ServerAddress(freePort(t)))
	require.ErrorIs(t, err, raft.ErrPipelineReplicationNotSupported)
}

// Why: with raft's default transport settings, once the pipeline's consumer
// stops reading (raft's decoder goroutine returns on the first refused
// append), a later send never returns until the pipeline is closed. raft
// closes it only after its send loop returns, so that loop, and with it
// raft.Shutdown, waits forever.
func TestDefaultRaftPipelineSendWaitsForeverOnceItsConsumerStops(t *testing.T) {
	t.Parallel()
	follower, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 10*time.Second, io.Discard)
	require.NoError(t, err)
	t.Cleanup(func() { _ = follower.Close() })
	received := make(chan struct{}, 16)
	stop := make(chan struct{})
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			select {
			case rpc := <-follower.Consumer():
				received <- struct{}{}
				rpc.Respond(&raft.AppendEntriesResponse{Term: 1, Success: false}, nil)
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-served
	})

	leader, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 10*time.Second, io.Discard)
	require.NoError(t, err)
	t.Cleanup(func() { _ = leader.Close() })
	p, err := leader.AppendEntriesPipeline("f", follower.LocalAddr())
	require.NoError(t, err, "the default transport pipelines")
	send := func() (raft.AppendFuture, error) {
		return p.AppendEntries(&raft.AppendEntriesRequest{Term: 1}, new(raft.AppendEntriesResponse))
	}

	_, err = send()
	require.NoError(t, err)
	<-received
	first := <-p.Consumer()
	require.False(t, first.Response().Success, "refused: raft's decoder stops reading here")

	_, err = send() // taken by the transport's decoder, which then waits for a reader
	require.NoError(t, err)
	<-received
	third := make(chan error, 1)
	go func() {
		_, err := send()
		third <- err
	}()
	<-received // the third request is on the wire; its send cannot hand it over
	select {
	case err := <-third:
		t.Fatalf("a send after the consumer stopped returned before Close: %v", err)
	default:
	}
	require.NoError(t, p.Close())
	require.ErrorIs(t, <-third, raft.ErrPipelineShutdown, "only Close releases the send")
}
