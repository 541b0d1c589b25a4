// Package expr compiles and evaluates the expressions of declared actions
// (docs/RULES.md): CEL (cel.dev/cel-go) over an action's typed params, its
// caller, the batch's leader time and a read-only view of the world's
// state. fsm compiles a world's actions once per rules version and
// evaluates them inside Apply on every replica, so an expression's result
// must depend only on its inputs: no map literals (CEL iterates maps in
// Go's random order), no time-zone functions, and a cost bound checked
// statically when the rules are set.
package expr
