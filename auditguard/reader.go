package auditguard

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// DefaultMaxLine bounds one audit line. Vault's LIST responses can be many MB; bufio.Scanner's
// 64 KiB default would silently stop the stream at the first one.
const DefaultMaxLine = 64 << 20

// ErrLineTooLong is counted (and the line skipped) when a line exceeds the maximum.
var ErrLineTooLong = errors.New("audit line exceeds the maximum length")

// ReadLines calls fn for every newline-terminated line of r (without the newline), growing its
// buffer as needed up to maxLine. A longer line is skipped whole and reported to tooLong; reading
// continues at the next line. The slice passed to fn is only valid during the call. It returns
// the number of bytes consumed, including skipped lines, and r's error (nil at EOF); a trailing
// partial line is not delivered (Vault always terminates entries, and a tailer must not treat a
// half-written line as whole), and its length is not counted.
func ReadLines(r io.Reader, maxLine int, fn func([]byte), tooLong func()) (int64, error) {
	return readLines(r, maxLine, fn, tooLong, nil)
}

// entryStartWithin bounds where a long line's JSON object must start (after an audit device's
// prefix) for readLines to keep buffering it.
const entryStartWithin = 4 << 10

// readLines is ReadLines that also gives up early on a line longer than its 64 KiB read buffer
// whose first bytes hold no JSON object start: reported to notEntry (when non-nil) and skipped
// without buffering. A format=jsonx device writes XML without any newline, one endless line that
// would otherwise be buffered up to maxLine (64 MiB by default) before being dropped.
func readLines(r io.Reader, maxLine int, fn func([]byte), tooLong, notEntry func()) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var consumed int64
	var long []byte
	skipping, notJSON := false, false
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			n := int64(len(chunk))
			line := chunk[:len(chunk)-1]
			if long != nil || skipping {
				consumed += int64(len(long)) + n
				if !skipping && len(long)+len(line) <= maxLine {
					long = append(long, line...)
					fn(long)
				} else if tooLong != nil && !notJSON {
					tooLong()
				}
				// nil marks "not inside a long line"; dropping the buffer also avoids pinning
				// a multi-MB allocation after one huge LIST response.
				long, skipping, notJSON = nil, false, false
				continue
			}
			consumed += n
			fn(line)
		case errors.Is(err, bufio.ErrBufferFull):
			if skipping {
				consumed += int64(len(chunk))
				continue
			}
			if long == nil && notEntry != nil && !bytes.Contains(chunk[:min(len(chunk), entryStartWithin)], objectStart) {
				consumed += int64(len(chunk))
				skipping, notJSON = true, true
				notEntry()
				continue
			}
			if len(long)+len(chunk) > maxLine {
				consumed += int64(len(long)) + int64(len(chunk))
				long, skipping = nil, true
				continue
			}
			long = append(long, chunk...)
		case errors.Is(err, io.EOF):
			return consumed, nil
		default:
			return consumed, err
		}
	}
}
