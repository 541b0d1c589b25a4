package detect

// ForgetFlags makes the next Evaluate return every flag again, with its
// current score: TestPrintScores follows each score over time.
func (d *Detector) ForgetFlags() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.flagged)
}
