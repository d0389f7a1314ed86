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

// readLines is lineReader.read without a shared buffer budget (tests).
func readLines(r io.Reader, maxLine int, fn func([]byte), tooLong, notEntry func()) (int64, error) {
	return lineReader{maxLine: maxLine, line: fn, tooLong: tooLong, notEntry: notEntry}.read(r)
}

// readBufferSize is each reader's bufio buffer: lines up to this long are delivered from it
// without an allocation; longer ones are copied into a growing buffer paid for from the budget.
const readBufferSize = 64 << 10

// minLongBuffer is the first allocation of a long line's buffer (twice the read buffer), so a
// line a little over 64 KiB is not copied three times.
const minLongBuffer = 2 * readBufferSize

// lineReader is ReadLines with the guard's bounds and callbacks.
type lineReader struct {
	maxLine int
	// budget pays for long-line buffers, shared by every reader of the guard; nil: unbounded.
	budget *byteBudget
	line   func([]byte)
	// tooLong is told of a line over maxLine, notEntry of a long line that is no JSON entry (both
	// may be nil), overBudget of a line skipped because the budget could not pay for its buffer.
	tooLong, notEntry, overBudget func()
}

// read is ReadLines that also gives up early on a line longer than its 64 KiB read buffer whose
// first bytes hold no JSON object start: reported to notEntry (when non-nil) and skipped without
// buffering. A format=jsonx device writes XML without any newline, one endless line that would
// otherwise be buffered up to maxLine (64 MiB by default) before being dropped.
//
// A longer line's buffer is taken from budget as it grows (never more than maxLine, counted at
// its capacity, returned once the line was delivered). When the budget cannot pay for the next
// growth the line is skipped whole and reported to overBudget: never waiting, since Vault waits
// on its socket write, and never holding more than the budget across every connection and file.
func (lr lineReader) read(r io.Reader) (int64, error) {
	br := bufio.NewReaderSize(r, readBufferSize)
	var consumed int64
	var long []byte
	skipping, notJSON, overBudget := false, false, false
	// grow makes room for n more bytes in long, paid for from the budget; false when it cannot pay.
	grow := func(n int) bool {
		need := len(long) + n
		if need <= cap(long) {
			return true
		}
		size := min(max(need, 2*cap(long), minLongBuffer), lr.maxLine)
		if !lr.budget.tryAcquire(int64(size - cap(long))) {
			return false
		}
		grown := make([]byte, len(long), size)
		copy(grown, long)
		long = grown
		return true
	}
	// done ends a long line: its buffer goes back to the budget (and, dropped, to the GC, rather
	// than pinning a multi-MB allocation after one huge LIST response); nil marks "not inside a
	// long line".
	done := func() {
		lr.budget.release(int64(cap(long)))
		long, skipping, notJSON, overBudget = nil, false, false, false
	}
	defer done()
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			n := int64(len(chunk))
			line := chunk[:len(chunk)-1]
			if long != nil || skipping {
				consumed += int64(len(long)) + n
				switch {
				case !skipping && len(long)+len(line) <= lr.maxLine && grow(len(line)):
					long = append(long, line...)
					lr.line(long)
				case overBudget || (!skipping && len(long)+len(line) <= lr.maxLine):
					if lr.overBudget != nil {
						lr.overBudget()
					}
				case !notJSON && lr.tooLong != nil:
					lr.tooLong()
				}
				done()
				continue
			}
			consumed += n
			lr.line(line)
		case errors.Is(err, bufio.ErrBufferFull):
			if skipping {
				consumed += int64(len(chunk))
				continue
			}
			if long == nil && lr.notEntry != nil && !bytes.Contains(chunk[:min(len(chunk), entryStartWithin)], objectStart) {
				consumed += int64(len(chunk))
				skipping, notJSON = true, true
				lr.notEntry()
				continue
			}
			if len(long)+len(chunk) > lr.maxLine {
				consumed += int64(len(long)) + int64(len(chunk))
				lr.budget.release(int64(cap(long)))
				long, skipping = nil, true
				continue
			}
			if !grow(len(chunk)) {
				consumed += int64(len(long)) + int64(len(chunk))
				lr.budget.release(int64(cap(long)))
				long, skipping, overBudget = nil, true, true
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
