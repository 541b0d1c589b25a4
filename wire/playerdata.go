package wire

// PlayerDataWrite is a game server's write of one player's critical data
// (PATCH /v1/worlds/{world}/players/{player}/data): each key of Data is
// set, a null value deletes its key, keys not named stay. All keys apply
// or none.
type PlayerDataWrite struct {
	Data map[string]Value `json:"data"`
	// ExpectVersion, when set, is the data version the player must have
	// (0: any); another answers 409 data_conflict and changes nothing.
	ExpectVersion uint64 `json:"expect_version,omitempty"`
}

// PlayerData answers a data write: the player's data after it and its
// version.
type PlayerData struct {
	World       string           `json:"world"`
	Player      string           `json:"player"`
	Data        map[string]Value `json:"data"`
	DataVersion uint64           `json:"data_version"`
}
