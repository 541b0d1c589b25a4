package fsm

// RecordRules returns the rules of a world that holds gsd's own records
// (anti-cheat flags, sinks' positions, the relay registry): strict (no
// field but fields), every field hidden from players and the public
// ("visible": "hidden") and written only by servers and admins ("write":
// "server").
func RecordRules(fields map[string]FieldRule) Rules {
	r := Rules{Strict: true, Fields: make(map[string]FieldRule, len(fields)),
		Schema: Schema{Access: make(map[string]FieldAccess, len(fields))}}
	for name, f := range fields {
		r.Fields[name] = f
		r.Schema.Access[name] = FieldAccess{Write: "server", Visible: "hidden"}
	}
	return r
}
