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
	s := &lineScan{lr: lr}
	defer s.done()
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			s.complete(chunk)
		case errors.Is(err, bufio.ErrBufferFull):
			s.partial(chunk)
		case errors.Is(err, io.EOF):
			return s.consumed, nil
		default:
			return s.consumed, err
		}
	}
}

// lineScan is one read's progress. Owned by the goroutine calling read.
type lineScan struct {
	lr lineReader
	// consumed counts the bytes of every line delivered or skipped so far.
	consumed int64
	// long buffers a line longer than the read buffer, paid for from lr.budget; nil marks "not
	// inside a long line".
	long []byte
	// skipping: the rest of the current line is dropped; notJSON: because it holds no JSON object
	// start (notEntry was told); overBudget: because the budget could not pay for its buffer.
	skipping, notJSON, overBudget bool
}

// grow makes room for n more bytes in long, paid for from the budget; false when it cannot pay.
func (s *lineScan) grow(n int) bool {
	need := len(s.long) + n
	if need <= cap(s.long) {
		return true
	}
	size := min(max(need, 2*cap(s.long), minLongBuffer), s.lr.maxLine)
	if !s.lr.budget.tryAcquire(int64(size - cap(s.long))) {
		return false
	}
	grown := make([]byte, len(s.long), size)
	copy(grown, s.long)
	s.long = grown
	return true
}

// done ends a long line: its buffer goes back to the budget (and, dropped, to the GC, rather
// than pinning a multi-MB allocation after one huge LIST response).
func (s *lineScan) done() {
	s.lr.budget.release(int64(cap(s.long)))
	s.long, s.skipping, s.notJSON, s.overBudget = nil, false, false, false
}

// complete handles a chunk that ends with a newline: a whole line delivered from the read
// buffer, or the end of a long line, delivered from long or reported as skipped.
func (s *lineScan) complete(chunk []byte) {
	n := int64(len(chunk))
	line := chunk[:len(chunk)-1]
	if s.long == nil && !s.skipping {
		s.consumed += n
		s.lr.line(line)
		return
	}
	lr := s.lr
	s.consumed += int64(len(s.long)) + n
	switch {
	case !s.skipping && len(s.long)+len(line) <= lr.maxLine && s.grow(len(line)):
		s.long = append(s.long, line...)
		lr.line(s.long)
	case s.overBudget || (!s.skipping && len(s.long)+len(line) <= lr.maxLine):
		if lr.overBudget != nil {
			lr.overBudget()
		}
	case !s.notJSON && lr.tooLong != nil:
		lr.tooLong()
	}
	s.done()
}

// partial handles a chunk that fills the read buffer without a newline: part of a long line,
// buffered in long, or skipped from here to its end (no JSON object start, over maxLine, over
// budget).
func (s *lineScan) partial(chunk []byte) {
	lr := s.lr
	if s.skipping {
		s.consumed += int64(len(chunk))
		return
	}
	if s.long == nil && lr.notEntry != nil && !bytes.Contains(chunk[:min(len(chunk), entryStartWithin)], objectStart) {
		s.consumed += int64(len(chunk))
		s.skipping, s.notJSON = true, true
		lr.notEntry()
		return
	}
	if len(s.long)+len(chunk) > lr.maxLine {
		s.consumed += int64(len(s.long)) + int64(len(chunk))
		lr.budget.release(int64(cap(s.long)))
		s.long, s.skipping = nil, true
		return
	}
	if !s.grow(len(chunk)) {
		s.consumed += int64(len(s.long)) + int64(len(chunk))
		lr.budget.release(int64(cap(s.long)))
		s.long, s.skipping, s.overBudget = nil, true, true
		return
	}
	s.long = append(s.long, chunk...)
}
