package store

import "github.com/gsd-dev/gsd/fsm"

// imported marks world w's archive as holding only events of w's
// incarnation (archive.markMoved) when this node applies w's import
// (fsm.CmdImportWorld, CmdImportWorldBack): at that point it does. A
// first import finds nothing of the world here (a delete dropped an
// earlier incarnation's bucket, a restore's reconcile dropped a world the
// state lacked); a move back finds its earlier stay's events, which the
// fsm replaces only for a fenced copy of the export's incarnation. A
// restore of a later snapshot then keeps them (restoreFloor): without the
// mark it took every event below the move back's import index, the
// earlier stay's, for an earlier incarnation's and dropped the world's
// whole archive. A node that installs a snapshot holding an import it
// never applied has no mark for the incarnation, and keeps only what
// comes after the import, as before. If the mark cannot be written the
// restore falls back to that too (a refill brings the rest back).
func (f *feed) imported(w fsm.WorldInfo) {
	if err := f.arch.markMoved(w.ID, w.Incarnation); err != nil {
		f.log.Warn("event feed: cannot mark an imported world's archive; a restore keeps only its events after the import", "world", w.ID, "err", err)
	}
}
