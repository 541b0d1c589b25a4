//go:build !jepsen_broken

package store

// BrokenLinearizableReads is false in every normal build; see the
// jepsen_broken build tag (store/jepsen_broken.go).
const BrokenLinearizableReads = false
