package client

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The hand-rolled reader reads the frames the server writes (the golden
// frames and the bench's) itself, without falling back to encoding/json.
func TestScanFrameReadsTheServersFrames(t *testing.T) {
	frames := [][]byte{}
	for _, n := range []int{1, 10} {
		ev, delta := framesFor(t, playCodec{}, n)
		frames = append(frames, ev, delta)
	}
	f, err := os.Open("../api/play/testdata/golden/play_frames_json.jsonl")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		frames = append(frames, []byte(sc.Text()))
	}
	for i, b := range frames {
		h, complete := scanFrame(b, "arena", nil)
		require.True(t, complete, "frame %d", i)
		require.Contains(t, []string{"events", "delta"}, h.typ)
	}
	h, complete := scanFrame([]byte(`{"type":"result","seq":3,"event":{"seq":9,"changes":[{"value":"a]}\"{"}]}}`), "w", nil)
	require.True(t, complete)
	require.Equal(t, "result", h.typ)
	require.Equal(t, uint64(3), h.seq)
}

// Whatever the reader gives up on is decoded by encoding/json, so a Play
// with HeadersOnly queues what a whole decode queues, less the changes,
// and refuses what it refuses.
func TestScanFrameAgreesWithEncodingJSON(t *testing.T) {
	for _, tc := range []struct {
		name, frame string
		complete    bool
	}{
		{"spaces and key order", " {\n\"events\" : [ {\"status\":\"applied\" , \"seq\":2,\"world\":\"w\",\"time\":-5,\"duplicate\":true,\"reason\":\"r\",\"x\":[1,{\"a\":\"}\"}],\"priority\":\"bulk\",\"player\":\"p\",\"index\":7,\"client_seq\":3} ] , \"seq\" : 2 , \"from\" : 2 , \"type\" : \"events\" } ", true},
		{"other world and status", `{"type":"events","from":2,"seq":2,"events":[{"seq":2,"world":"x","status":"odd","priority":"p","duplicate":false}]}`, true},
		{"no events", `{"type":"events","from":2,"seq":5,"events":[]}`, true},
		{"unknown keys skipped", `{"type":"events","from":2,"seq":2,"x":1.5e3,"n":null,"b":false,"events":[{"seq":2,"versions":{"e":{"x":1}},"changes":[{"value":"\"[{"}]}]}`, true},
		{"repeated keys: the last wins", `{"type":"events","from":2,"seq":9,"seq":2,"events":[{"seq":5}],"events":[{"seq":2,"seq":2}]}`, true},
		{"delta", `{"type":"delta","from":2,"seq":4,"entities":{"e":{"deleted":3,"fields":{}}}}`, true},
		{"empty delta", `{"type":"delta","from":2,"seq":4,"entities": { } }`, true},
		{"delta without entities", `{"type":"delta","from":2,"seq":4}`, true},
		{"an escape", `{"type":"events","from":2,"seq":2,"events":[{"seq":2,"player":"a\"b"}]}`, false},
		{"an escaped key", `{"type":"events","from":2,"s\u0065q":2,"events":[]}`, false},
		{"a key in another case", `{"type":"events","from":2,"Seq":2,"events":[{"seq":2}]}`, false},
		{"an event key in another case", `{"type":"events","from":2,"seq":2,"events":[{"SEQ":2}]}`, false},
		{"a null", `{"type":"events","from":2,"seq":2,"events":[{"seq":2,"player":null}]}`, false},
		{"null events", `{"type":"events","from":2,"seq":2,"events":null}`, false},
		{"null entities", `{"type":"delta","from":2,"seq":2,"entities":null}`, false},
		{"a float seq", `{"type":"events","from":2,"seq":2.0,"events":[]}`, false},
		{"a huge seq", `{"type":"events","from":2,"seq":18446744073709551616,"events":[]}`, false},
		{"a huge time", `{"type":"events","from":2,"seq":2,"events":[{"seq":2,"time":9223372036854775808}]}`, false},
		{"a negative seq", `{"type":"events","from":2,"seq":-2,"events":[]}`, false},
		{"a string seq", `{"type":"events","from":2,"seq":"2","events":[]}`, false},
		{"a number type", `{"type":1,"from":2,"seq":2}`, false},
		{"duplicate not a bool", `{"type":"events","from":2,"seq":2,"events":[{"seq":2,"duplicate":1}]}`, false},
		{"an event not an object", `{"type":"events","from":2,"seq":2,"events":[2]}`, false},
		{"not an object", `[1]`, false},
		{"not JSON", `{"type":"events",`, false},
		{"a bad skipped array", `{"type":"events","from":2,"seq":2,"x":[1,],"events":[]}`, false},
		{"a bad skipped literal", `{"type":"events","from":2,"seq":2,"x":tru,"events":[]}`, false},
		{"a bad skipped escape", `{"type":"events","from":2,"seq":2,"x":"\q","events":[]}`, false},
		{"a bad skipped unicode escape", `{"type":"events","from":2,"seq":2,"x":"\u12g4","events":[]}`, false},
		{"a skipped number with a leading zero", `{"type":"events","from":2,"seq":2,"x":01,"events":[]}`, false},
		{"a skipped number without decimals", `{"type":"events","from":2,"seq":2,"x":1.,"events":[]}`, false},
		{"a skipped number without exponent", `{"type":"events","from":2,"seq":2,"x":1e+,"events":[]}`, false},
		{"a seq with a leading zero", `{"type":"events","from":2,"seq":02,"events":[]}`, false},
		{"a control character", "{\"type\":\"events\",\"from\":2,\"seq\":2,\"x\":\"a\tb\",\"events\":[]}", false},
		{"a control character in a read string", "{\"type\":\"events\",\"from\":2,\"seq\":2,\"events\":[{\"seq\":2,\"player\":\"a\tb\"}]}", false},
		{"not UTF-8", "{\"type\":\"events\",\"from\":2,\"seq\":2,\"events\":[{\"seq\":2,\"player\":\"a\xffb\"}]}", false},
		{"UTF-8", `{"type":"events","from":2,"seq":2,"events":[{"seq":2,"player":"é"}]}`, true},
		{"an entity not an object", `{"type":"delta","from":2,"seq":4,"entities":{"e":1}}`, false},
		{"a trailing NUL", "{\"type\":\"events\",\"from\":2,\"seq\":2,\"events\":[]}\x00", false},
		{"too deep", `{"type":"events","from":2,"seq":2,"x":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `,"events":[]}`, false},
		{"trailing data", `{"type":"events","from":2,"seq":2,"events":[]} {}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, complete := scanFrame([]byte(tc.frame), "w", nil)
			require.Equal(t, tc.complete, complete)
			whole, lean := benchPlay(false, playCodec{}), benchPlay(true, playCodec{})
			defer whole.cancel()
			defer lean.cancel()
			whole.received, whole.lastEvent, lean.received, lean.lastEvent = 1, 1, 1, 1
			werr := whole.message(nil, whole.codec.messageType(), []byte(tc.frame))
			lerr := lean.message(nil, lean.codec.messageType(), []byte(tc.frame))
			require.Equal(t, werr == nil, lerr == nil, "whole: %v, headers only: %v", werr, lerr)
			want, got := drain(whole), drain(lean)
			require.Len(t, got, len(want))
			for j := range want {
				require.Equal(t, want[j].covered, got[j].covered)
				require.Equal(t, want[j].skip, got[j].skip)
				require.Equal(t, withoutChanges(want[j].ev), got[j].ev)
			}
		})
	}
}

func drain(p *Play) []item {
	var its []item
	for {
		select {
		case it := <-p.events:
			its = append(its, it)
		default:
			return its
		}
	}
}

// Whatever the reader reads to the end is JSON that encoding/json decodes
// into a headerMsg with the same header fields.
func FuzzScanFrameReadsWhatEncodingJSONReads(f *testing.F) {
	for _, n := range []int{1, 3} {
		ev, delta := framesFor(f, playCodec{}, n)
		f.Add(ev)
		f.Add(delta)
	}
	for _, s := range []string{
		`{"type":"events","from":2,"seq":2,"x":[1.5e-3,-0,true,false,null,"\u00e9\n\"",{}],"events":[{"seq":2,"time":-5,"duplicate":true,"reason":"é"}]}`,
		`{"type":"delta","from":2,"seq":4,"entities":{"e":{"deleted":3,"fields":{}}}}`,
		`{"type":"result","seq":3,"event":{"seq":9}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, complete := scanFrame(b, "w", nil)
		if !complete {
			return
		}
		require.True(t, json.Valid(b), "%q", b)
		var m headerMsg
		require.NoError(t, json.Unmarshal(b, &m), "%q", b)
		require.Equal(t, m.Type, h.typ)
		require.Equal(t, m.Seq, h.seq)
		require.Equal(t, m.From, h.from)
		require.Equal(t, len(m.Entities) > 0, h.entities)
		require.Len(t, h.evs, len(m.Events))
		for i := range m.Events {
			require.Equal(t, m.Events[i].event(), h.evs[i])
		}
	})
}
