package apitest

import "github.com/gsd-dev/gsd/fsm"

// GoldRules declares the authoritative fields gold and trap of kind k;
// gold shows as visible says and trap as trap says ("": to all). The
// rules-update tests of several read paths hide gold with it.
func GoldRules(k fsm.Kind, visible, trap string) fsm.Rules {
	r := fsm.Rules{Fields: map[string]fsm.FieldRule{
		"gold": {Type: k, Policy: fsm.PolicyAuthoritative},
		"trap": {Type: k, Policy: fsm.PolicyAuthoritative},
	}}
	for f, v := range map[string]string{"gold": visible, "trap": trap} {
		if v != "" {
			if r.Schema.Access == nil {
				r.Schema.Access = map[string]fsm.FieldAccess{}
			}
			r.Schema.Access[f] = fsm.FieldAccess{Visible: v}
		}
	}
	return r
}
