package wire

import "net/url"

// PathWorldMove is the admin route that moves a world to another shard
// (issue 14, gsd --meta): POST a WorldMove, answered a WorldMoved.
func PathWorldMove(world string) string {
	return "/v1/cluster/worlds/" + url.PathEscape(world) + "/move"
}

// WorldMove is the body of POST /v1/cluster/worlds/{world}/move: the
// shard the world goes to.
type WorldMove struct {
	To uint64 `json:"to"`
}

// WorldMoved answers a move: the world is on shard To, its events up to
// Seq were committed at its old home From, the next one commits on To.
// Done says the world was on To already (a repeated call, or no move).
type WorldMoved struct {
	World string `json:"world"`
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
	Seq   uint64 `json:"seq"`
	Done  bool   `json:"done,omitempty"`
}

// MoveStep is the body of a move's node-to-node call (POST
// /internal/v1/cluster/worlds/{world}/move) to the leader of one of the
// two groups: Step "export" fences the world on its group towards To and
// answers its export; Step "import" imports Export (Data from an export
// of the world with Incarnation) on the group To; Step "check" (log
// version 15) answers {} when the group To would import a world export
// of format 2 (a salted world's), else the error its version gate gives.
// An export step's Checked says the target was asked (a log 15 admin sets
// it on every export step), and Unsalted, when set, is why the target
// would not (a check's error). Together they pick the export's format,
// so that every replica of the source answers the same world in the same
// format (in format 2 a replica holding a player's data version as 0,
// restored from a snapshot before format 8, answers 0 there): Checked
// without Unsalted, format 2 for every world (an unsalted one keeps its
// data versions); else format 1 for an unsalted world, and a salted world
// not fenced yet is refused before its fence (an older admin's step,
// whose target nobody asked, has neither). A source on a binary before
// this rule answers format 1 for an unsalted world all the same, which
// every target imports.
//
// A check step's Back (log version 17) says the caller tells a move
// back's refusal from the format answer: the target's leader then answers
// 200 with a MoveCheck, whose Unsalted is why the group would not import
// an export of format 2 ("" when it would), and an error only when the
// move must not go on (409 version_gate too when the group holds the
// world's fenced copy and a member reads log 16, or when Needs are set
// and a voter does not read them). Without Back (an admin on an older
// binary, which takes any version_gate for the format's) a refusal of the
// copy is 409 world_exists. A node on a binary before log 17 answers a
// check step with Back 400 malformed (it decodes strictly).
//
// Needs (issue 13), set only for a world whose rules need more than any
// export format does (a quantum: log 16), is what the import of the
// world's export needs (fsm.ImportRulesNeeds of format 2). On a check
// step the target's gate answers for it, version_gate when a voter does
// not read it: the move then ends with nothing fenced. On an export step
// it says what the target was checked for: the source refuses, before
// its fence, a world whose rules need more (an older admin's step, which
// has none). A binary that does not know the key answers malformed (it
// decodes strictly): for a check step, the move ends with nothing
// fenced; for an export step, after a check that passed, it is asked
// again without it.
//
// A check step carries both when the world has needs (an admin on this
// binary always sends Back): a target that knows both answers the needs'
// gate, the copy and the format in one MoveCheck. A target that answers
// malformed cannot be told which key it lacks: with Needs set the move
// ends there, nothing fenced (a target that cannot check the needs must
// not receive the world); with Back alone it is asked again without it,
// as before log 17.
type MoveStep struct {
	Step     string       `json:"step"`
	To       uint64       `json:"to"`
	Export   *WorldExport `json:"export,omitempty"`
	Checked  bool         `json:"checked,omitempty"`
	Unsalted string       `json:"unsalted,omitempty"`
	Back     bool         `json:"back,omitempty"`
	Needs    *Versions    `json:"needs,omitempty"`
}

// MoveCheck answers a check step with Back (MoveStep): Unsalted is why
// the target group would not import an export of format 2, "" when it
// would.
type MoveCheck struct {
	Unsalted string `json:"unsalted,omitempty"`
}

// A MoveStep's steps.
const (
	MoveStepExport = "export"
	MoveStepImport = "import"
	MoveStepCheck  = "check"
	// MoveStepNeeds (issue 13) asks the leader of the world's group, before
	// the check, what the world's import needs (MoveSource answers it):
	// only there are the world's rules whole, the public world route
	// answering them without the spectator keys (a quantum among them).
	// A binary before it answers malformed (an unknown step) or 404.
	MoveStepNeeds = "needs"
)

// MoveSource answers a move's "needs" step: Needs, what the import of the
// world's export needs when its rules need more than any export format
// does (absent: nothing more), and Fenced, the world's fence when an
// earlier attempt of a move fenced it already (absent: not fenced).
type MoveSource struct {
	Needs  *Versions  `json:"needs,omitempty"`
	Fenced *MoveFence `json:"fenced,omitempty"`
}

// MoveFence is a fenced world's fence: the shard it goes to and its seq
// at the fence.
type MoveFence struct {
	Shard uint64 `json:"shard"`
	Seq   uint64 `json:"seq"`
}

// WorldExport is a fenced world's export: its incarnation, its seq at the
// fence and its state (fsm's export encoding).
type WorldExport struct {
	Incarnation uint64 `json:"incarnation"`
	Seq         uint64 `json:"seq"`
	Data        []byte `json:"data"`
}
