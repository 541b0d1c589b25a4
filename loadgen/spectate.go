package loadgen

import (
	"bufio"
	"bytes"
	"context"

	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// sampleStream reads world's event stream from node like countStream, but
// line by line: it counts each event into n, checks that seqs follow each
// other without a gap or a repeat, and passes each event's leader time to
// rec. It picks seq and time out of the line instead of decoding the
// event: the load generator shares the cores with gsd, and a full decode
// of every event would measure it rather than gsd.
func sampleStream(ctx context.Context, hc *http.Client, node, world string, linger time.Duration, n *atomic.Int64, rec func(t int64)) error {
	resp, err := openStream(ctx, hc, node, world, linger)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rd := bufio.NewReaderSize(resp.Body, 32<<10)
	var last uint64
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			return err
		}
		seq, ok1 := jsonUint(line, `"seq":`)
		t, ok2 := jsonUint(line, `"time":`)
		if !ok1 || !ok2 {
			return fmt.Errorf("event stream from %s: not an event: %.200s", node, line)
		}
		if last != 0 && seq != last+1 {
			return fmt.Errorf("event stream from %s: seq %d after %d", node, seq, last)
		}
		last = seq
		n.Add(1)
		rec(int64(t))
	}
}

// jsonUint returns the unsigned number after the first key in line (an
// event line: its top-level world, seq, index and time come before any
// nested object, and a key's quotes cannot occur inside a JSON string).
func jsonUint(line []byte, key string) (uint64, bool) {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := line[i+len(key):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	v, err := strconv.ParseUint(string(rest[:j]), 10, 64)
	return v, err == nil
}
