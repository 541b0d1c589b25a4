package jepsen

import "time"

// Flags for scenarios that force snapshots and log compaction early, so a
// lagging follower needs InstallSnapshot and restarts restore snapshots.
var compactArgs = []string{"--snapshot-threshold", "32", "--snapshot-interval", "300ms", "--trailing-logs", "16"}

// Matrix is the full fault matrix (make jepsen). Every scenario keeps fsync
// on: acknowledged writes must survive kill -9.
func Matrix() []Scenario {
	return []Scenario{
		{Name: "none", Nemesis: None},
		{Name: "kill-leader", Nemesis: KillLeader, Play: 3},
		{Name: "kill-random", Nemesis: KillRandom},
		{Name: "kill-majority", Nemesis: KillMajority},
		{Name: "pause-leader", Nemesis: PauseLeader},
		{Name: "pause-random", Nemesis: PauseRandom},
		{Name: "partition-leader-minority", Nemesis: PartitionLeaderMinority, Play: 3},
		{Name: "partition-halves-5", Nemesis: PartitionRandomHalves, Voters: 5},
		{Name: "one-way-leader-out", Nemesis: PartitionOneWay},
		{Name: "one-way-leader-in", Nemesis: PartitionOneWayInbound},
		{Name: "bridge-5", Nemesis: PartitionBridge, Voters: 5},
		{Name: "latency-75ms-jitter-50ms", Nemesis: func() Nemesis { return Latency(75*time.Millisecond, 50*time.Millisecond) }},
		{Name: "blackhole-node", Nemesis: Blackhole, Play: 3},
		{Name: "bandwidth-16KBps", Nemesis: func() Nemesis { return Bandwidth(16 << 10) }},
		{Name: "connection-resets", Nemesis: ConnectionResets, Play: 3},
		{Name: "isolate-until-compacted", Nemesis: IsolateUntilCompacted, Args: compactArgs},
		{Name: "membership-readd", Nemesis: MembershipReAdd},
		{Name: "membership-replace", Nemesis: MembershipReplace, Spares: 1},
		{Name: "leadership-transfer", Nemesis: LeadershipTransfer, Hold: time.Second, Play: 2},
		{Name: "restart-from-snapshot", Nemesis: RestartFromSnapshot, Args: compactArgs},

		// Disk faults through failpoints (gsd built with -tags gsd_failpoints).
		{Name: "slow-fsync-leader", Tags: FailpointsTag, Nemesis: DiskFault("leader", fpRaftLogAppend+"=sleep(200ms)")},
		{Name: "enospc-raft-follower", Tags: FailpointsTag, Nemesis: DiskFault("follower", fpRaftLogAppend+"=error(enospc)", fpRaftStable+"=error(enospc)")},
		{Name: "enospc-raft-leader", Tags: FailpointsTag, Nemesis: DiskFault("leader", fpRaftLogAppend+"=error(enospc)", fpRaftStable+"=error(enospc)")},
		{Name: "enospc-archive", Tags: FailpointsTag, Nemesis: DiskFault("all", fpArchiveWrite+"=error(enospc)"), Args: compactArgs},
		{Name: "crash-between-steps", Tags: FailpointsTag, Nemesis: CrashBetweenSteps, Args: crashArgs},

		// Known hashicorp/raft problems (RAFT-NOTES.md).
		{Name: "hung-disk-leader-503", Tags: FailpointsTag, Nemesis: HungLeaderDisk, Hold: 6 * time.Second},
		// The same with gsd's disk stall detector at 2 s: the stuck leader
		// exits, the others elect a leader, writes resume before the disk does.
		{Name: "hung-disk-leader-503-stall-exit", Tags: FailpointsTag, Nemesis: HungLeaderDisk, Hold: 6 * time.Second,
			Args: []string{"--disk-stall-timeout", "2s"}},
		{Name: "large-snapshot-lagging-follower-697", Nemesis: LaggingFollowerLargeSnapshot(4 << 20), Preload: 20000,
			Args: largeSnapshotArgs, Hold: 4 * time.Second, Quiet: 12 * time.Second},
		{Name: "partition-flap-695", Nemesis: PartitionLeaderMinority, Hold: 1200 * time.Millisecond, Quiet: 800 * time.Millisecond},

		// Shards (issue 14): two Raft groups over the nodes' one Raft port
		// each (the mux), w0 on one, w1 on the other; each group elects
		// its own leader, so "the leader" of a nemesis is group 0's and
		// group 1's may be elsewhere.
		{Name: "shards-kill-leader", Nemesis: KillLeader, Shards: 2, Play: 2},
		{Name: "shards-kill-random", Nemesis: KillRandom, Shards: 2},
		{Name: "shards-partition-leader-minority", Nemesis: PartitionLeaderMinority, Shards: 2, Play: 2},
		{Name: "shards-partition-halves-5", Nemesis: PartitionRandomHalves, Voters: 5, Shards: 3},
		{Name: "shards-pause-random", Nemesis: PauseRandom, Shards: 2},
		// A world moved between shards under a fault (move.go): the meta
		// group holds the map (the move's admin route needs it); four
		// shards leave each world three moves. Each fault fences a world
		// on its group's leader, then kills or cuts off a leader, probes
		// the fenced world (421 world_moved), and the move is resumed.
		{Name: "shards-move-kill-source-leader", Nemesis: MoveUnder(MoveKillSource), Shards: 4, Args: metaArgs, Play: 2},
		{Name: "shards-move-kill-target-leader", Nemesis: MoveUnder(MoveKillTarget), Shards: 4, Args: metaArgs},
		{Name: "shards-move-partition-source-leader", Nemesis: MoveUnder(MovePartitionSource), Shards: 4, Args: metaArgs, Play: 2},
		{Name: "shards-move-kill-source-mid-move", Nemesis: MoveUnder(MoveKillSourceMidMove), Shards: 4, Args: metaArgs},
		{Name: "shards-move-pause-source-leader", Nemesis: MoveUnder(MovePauseSource), Shards: 4, Args: metaArgs, Play: 2},
		// Moves back (fsm log 17): w0 goes back and forth between two
		// shards (A -> B -> A -> B ..., first back to the shard that
		// created it), each move under the next fault of the rotation; the
		// import at the old home replaces the copy it kept fenced. w1
		// stays on its shard.
		{Name: "shards-move-back", Nemesis: MoveBackUnder("rotate"), Shards: 2, Args: metaArgs, Play: 2},
	}
}

// Flags for the large-snapshot scenario: snapshots only when the nemesis
// asks (a 20 MB state is not re-encoded every 300 ms), short trailing log.
var largeSnapshotArgs = []string{"--snapshot-threshold", "1000000", "--snapshot-interval", "1h", "--trailing-logs", "16"}

// Smoke is the slice make test runs: short and light on CPU.
func Smoke() []Scenario {
	light := func(s Scenario) Scenario {
		s.Duration, s.Clients, s.Think, s.Play = 14*time.Second, 3, 20*time.Millisecond, 2
		return s
	}
	return []Scenario{
		light(Scenario{Name: "smoke-leader-kill", Nemesis: KillLeader}),
		light(Scenario{Name: "smoke-partition-minority", Nemesis: PartitionLeaderMinority}),
		light(Scenario{Name: "smoke-shards-kill-random", Nemesis: KillRandom, Shards: 2}),
		light(Scenario{Name: "smoke-shards-move", Nemesis: MoveUnder("rotate"), Shards: 3, Args: metaArgs}),
		// Short faults so that w0 moves at least three times (A -> B -> A -> B).
		func() Scenario {
			s := light(Scenario{Name: "smoke-shards-move-back", Nemesis: MoveBackUnder("rotate"), Shards: 2, Args: metaArgs})
			s.Hold, s.Quiet = time.Second, time.Second
			return s
		}(),
		// Every kind of fault once, 1 s each, on five voters and a spare,
		// disk faults included (gsd built with failpoints). Snapshots on
		// demand, as in crash-between-steps: with compactArgs every node
		// ends up installing a snapshot, and then no node holds a complete
		// event feed for the duplicate check (the matrix covers compaction).
		{Name: "smoke-rotating-faults", Voters: 5, Spares: 1, Clients: 3, Think: 20 * time.Millisecond, Play: 3,
			Tags: FailpointsTag, Args: crashArgs,
			Duration: 55 * time.Second, Hold: time.Second, Quiet: 1500 * time.Millisecond,
			Nemesis: Rotate(PauseRandom, PartitionRandomHalves, PartitionOneWay, PartitionOneWayInbound, PartitionBridge,
				func() Nemesis { return Latency(75*time.Millisecond, 50*time.Millisecond) }, Blackhole,
				func() Nemesis { return Bandwidth(16 << 10) }, ConnectionResets, IsolateUntilCompacted,
				MembershipReAdd, MembershipReplace, LeadershipTransfer, RestartFromSnapshot, KillRandom,
				DiskFault("leader", fpRaftLogAppend+"=sleep(200ms)"),
				DiskFault("follower", fpRaftLogAppend+"=error(enospc)", fpRaftStable+"=error(enospc)"),
				DiskFault("leader", fpRaftLogAppend+"=error(enospc)", fpRaftStable+"=error(enospc)"),
				DiskFault("all", fpArchiveWrite+"=error(enospc)"),
				CrashBetweenSteps)},
	}
}

// Flags for crash-between-steps: snapshots only when the nemesis asks (so
// the snapshot steps are reached on the chosen node), and a trailing log long
// enough that a restarted node catches up from the log. With compactArgs
// every crashed node needed InstallSnapshot, so after three crashes no node
// had a complete event archive left for the feed check (410 archive_gap).
var crashArgs = []string{"--snapshot-threshold", "1000000", "--snapshot-interval", "1h", "--trailing-logs", "1024"}
