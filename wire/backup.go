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

// A cluster backup (gsdctl backup --cluster) asks each group's leader for
// that group's snapshot with ?group=ID (QueryBackupGroup). Such an answer
// comes only from the group's leader (others answer 503 not_leader), is
// chunked rather than sized by Content-Length (HeaderBackupSize gives
// the length) and ends with the trailer TrailerBackupWorlds: the JSON list
// of the group's worlds at the snapshot ([]BackupWorld), read from the
// streamed bytes themselves.
const (
	// QueryBackupGroup names the group a backup is taken of.
	QueryBackupGroup = "group"
	// HeaderBackupGroup is the group the backup is of.
	HeaderBackupGroup = "X-Gsd-Backup-Group"
	// HeaderBackupSize is the backup's length in bytes.
	HeaderBackupSize = "X-Gsd-Backup-Size"
	// TrailerBackupWorlds carries the worlds at the snapshot.
	TrailerBackupWorlds = "X-Gsd-Backup-Worlds"
)

// BackupWorld is a world as a backup holds it: its seq, the Raft index of
// its last event and its state hash after that seq (as GET
// /v1/worlds/{w}/hash answers), and its incarnation.
type BackupWorld struct {
	ID          string `json:"id"`
	Seq         uint64 `json:"seq"`
	Index       uint64 `json:"index"`
	Hash        Hash   `json:"hash"`
	Incarnation uint64 `json:"incarnation,omitempty"`
}

// BackupManifestFile is the cluster backup's manifest, in its directory.
const BackupManifestFile = "manifest.json"

// BackupManifest describes a cluster backup (gsdctl backup --cluster): one
// snapshot file per group, each taken on the group's leader, beside it in
// the directory; `gsd restore --cluster` reads it.
type BackupManifest struct {
	// Format is the manifest's format version, BackupManifestFormat.
	Format  int               `json:"format"`
	Created string            `json:"created"` // RFC 3339, the tool's clock
	Groups  []BackupGroupFile `json:"groups"`
}

// BackupManifestFormat is the manifest format this module writes and reads.
const BackupManifestFormat = 1

// BackupGroupFile is one group's snapshot in a cluster backup: its file
// (relative to the manifest), length and SHA-256 (hex), the Raft position
// and node it was taken at, and the worlds it holds at their seqs.
type BackupGroupFile struct {
	Group  uint64        `json:"group"`
	File   string        `json:"file"`
	Size   int64         `json:"size"`
	SHA256 string        `json:"sha256"`
	Index  uint64        `json:"index"`
	Term   uint64        `json:"term"`
	Node   string        `json:"node"`
	Worlds []BackupWorld `json:"worlds"`
}
