package wire

// Codes of the segmented watch route's own answers (docs/PROTOCOL.md,
// "Watching over HTTP"), on nodes and relays.
const (
	// CodeSegmentNotReady: the segment is not finished yet (425, with
	// Retry-After).
	CodeSegmentNotReady = "segment_not_ready"
	// CodeSegmentGone: the segment is older than the server keeps, or was
	// cut before it started cutting this view (410: read the manifest).
	CodeSegmentGone = "segment_gone"
)

// WatchManifest is the answer of GET .../watch/index.json: the segments
// of a world's view the server has finished, newest last.
type WatchManifest struct {
	World string `json:"world"`
	View  string `json:"view"`
	// DelayMS is the delay the request asked for (the class's may be more).
	DelayMS int64 `json:"delay_ms"`
	// SegmentMS is how long one segment is: segment n covers the server's
	// clock from n×SegmentMS to (n+1)×SegmentMS ms after the Unix epoch.
	SegmentMS int64 `json:"segment_ms"`
	// Current is the number of the segment being cut now.
	Current  int64          `json:"current"`
	Segments []WatchSegment `json:"segments"`
}

// WatchSegment is one finished segment of a WatchManifest.
type WatchSegment struct {
	N     int64  `json:"n"`
	First uint64 `json:"first"` // the seq of its opening keyframe
	Last  uint64 `json:"last"`  // the seq of its last frame
	// Keyframe says it opens with a keyframe (every segment does).
	Keyframe bool   `json:"keyframe"`
	URL      string `json:"url"` // relative to the manifest
}
