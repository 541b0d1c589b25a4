// Package jepsen is gsd's fault-injection suite: it starts real gsd
// processes, routes every link (Raft peer to peer, and client to node)
// through in-process userspace TCP proxies that can stall, delay, throttle
// or reset each direction, runs a workload over the public HTTP API with
// idempotent retries while a nemesis injects faults (kill -9, SIGSTOP,
// partitions, latency, membership changes, snapshots), records a history,
// and checks it: porcupine linearizability per register, counter and set
// bounds, exactly-once actions in every node's event feed, and equal state
// hashes after healing. See DESIGN.md and docs/FAULTS.md.
//
// make test runs the smoke slice (TestSmoke*) and the checker tests;
// make jepsen (build tag jepsen) runs the full matrix and the test that
// the suite catches a deliberately broken gsd (-tags jepsen_broken).
package jepsen
