package auditguard

import (
	"bufio"
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
	br := bufio.NewReaderSize(r, 64<<10)
	var consumed int64
	var long []byte
	skipping := false
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
				} else if tooLong != nil {
					tooLong()
				}
				// nil marks "not inside a long line"; dropping the buffer also avoids pinning
				// a multi-MB allocation after one huge LIST response.
				long, skipping = nil, false
				continue
			}
			consumed += n
			fn(line)
		case errors.Is(err, bufio.ErrBufferFull):
			if skipping {
				consumed += int64(len(chunk))
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
