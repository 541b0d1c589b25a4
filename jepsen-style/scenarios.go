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
		{Name: "kill-leader", Nemesis: KillLeader},
		{Name: "kill-random", Nemesis: KillRandom},
		{Name: "kill-majority", Nemesis: KillMajority},
		{Name: "pause-leader", Nemesis: PauseLeader},
		{Name: "pause-random", Nemesis: PauseRandom},
		{Name: "partition-leader-minority", Nemesis: PartitionLeaderMinority},
		{Name: "partition-halves-5", Nemesis: PartitionRandomHalves, Voters: 5},
		{Name: "one-way-leader-out", Nemesis: PartitionOneWay},
		{Name: "one-way-leader-in", Nemesis: PartitionOneWayInbound},
		{Name: "bridge-5", Nemesis: PartitionBridge, Voters: 5},
		{Name: "latency-75ms-jitter-50ms", Nemesis: func() Nemesis { return Latency(75*time.Millisecond, 50*time.Millisecond) }},
		{Name: "blackhole-node", Nemesis: Blackhole},
		{Name: "bandwidth-16KBps", Nemesis: func() Nemesis { return Bandwidth(16 << 10) }},
		{Name: "connection-resets", Nemesis: ConnectionResets},
		{Name: "isolate-until-compacted", Nemesis: IsolateUntilCompacted, Args: compactArgs},
		{Name: "membership-readd", Nemesis: MembershipReAdd},
		{Name: "membership-replace", Nemesis: MembershipReplace, Spares: 1},
		{Name: "leadership-transfer", Nemesis: LeadershipTransfer, Hold: time.Second},
		{Name: "restart-from-snapshot", Nemesis: RestartFromSnapshot, Args: compactArgs},
	}
}

// Smoke is the slice make test runs: short and light on CPU.
func Smoke() []Scenario {
	light := func(s Scenario) Scenario {
		s.Duration, s.Clients, s.Think = 14*time.Second, 3, 20*time.Millisecond
		return s
	}
	return []Scenario{
		light(Scenario{Name: "smoke-leader-kill", Nemesis: KillLeader}),
		light(Scenario{Name: "smoke-partition-minority", Nemesis: PartitionLeaderMinority}),
		light(Scenario{Name: "smoke-latency", Nemesis: func() Nemesis { return Latency(75*time.Millisecond, 50*time.Millisecond) }}),
	}
}
