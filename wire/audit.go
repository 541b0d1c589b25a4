package wire

import "encoding/json"

// AuditProof answers GET /v1/worlds/{world}/audit/proof: the inclusion
// proof of the event of Seq in the world's audit tree of its first Size
// events (RFC 6962 hashes, checked with the checkpoint of that size).
type AuditProof struct {
	World string   `json:"world"`
	Seq   uint64   `json:"seq"`
	Size  int64    `json:"size"`
	Proof [][]byte `json:"proof"` // 32-byte hashes, base64 in JSON
}

// AuditConsistency answers GET /v1/worlds/{world}/audit/consistency: the
// proof that the world's audit tree of From events is a prefix of its
// tree of To events.
type AuditConsistency struct {
	World string   `json:"world"`
	From  int64    `json:"from"`
	To    int64    `json:"to"`
	Proof [][]byte `json:"proof"` // 32-byte hashes, base64 in JSON
}

// AuditSaltsSigned answers GET /v1/worlds/{world}/audit/salts?signed=1: a
// salted world's salt table (an AuditSalts) as the exact JSON bytes the
// node signed, and Note, the signed salts note (anticheat/audit.SaltsNote)
// over their SHA-256: empty when the node holds no audit key. Without
// ?signed the route answers the AuditSalts alone, as to gsdctl before
// signed salts; a node from before answers that to ?signed=1 too (no
// table field).
type AuditSaltsSigned struct {
	Table json.RawMessage `json:"table"`
	Note  string          `json:"note,omitempty"`
}
