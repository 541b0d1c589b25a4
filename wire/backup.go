package wire

// Backups (issue 16): GET PathBackup streams the group's snapshot as this
// node takes it (application/octet-stream, with Content-Length), an admin
// route. The headers below say which Raft position it reflects; `gsd
// restore` loads the bytes into a new data directory.
const (
	// PathBackup is the backup route's path.
	PathBackup = "/v1/cluster/backup"
	// HeaderBackupIndex is the Raft index the backup reflects.
	HeaderBackupIndex = "X-Gsd-Backup-Index"
	// HeaderBackupTerm is the Raft term of that index.
	HeaderBackupTerm = "X-Gsd-Backup-Term"
	// HeaderBackupNode is the id of the node that took the backup.
	HeaderBackupNode = "X-Gsd-Backup-Node"
)
