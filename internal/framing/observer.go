package framing

import "bytes"

// observer follows HTTP/1.x request framing over the bytes of one
// connection, as they are read, without copying them: request heads and
// chunk-size lines byte by byte, body data skipped by count.
//
// It needs to agree with net/http only on requests net/http accepts; on
// anything net/http rejects (which closes the connection) the observer may
// do as it likes, so it is lenient wherever net/http is strict and stops
// wherever it could not tell how net/http frames the rest.
type observer struct {
	st      pstate
	heads   int // complete request heads seen
	badHead int // index+1 of the first ambiguous head; 0: none

	// The head being read.
	http10       bool
	tail         [8]byte // last bytes of the request line, for its version
	tailN        int
	hasCL, hasTE bool
	clSeen       bool  // an earlier Content-Length header was completed
	cl           int64 // Content-Length being parsed
	clFirst      int64 // value of the earlier Content-Length headers
	clPhase      uint8 // 0 before digits, 1 in digits, 2 after digits
	cur          field // header whose value is being read
	nameIdx      int
	maybeCL      bool
	maybeTE      bool

	// Bodies.
	remain   int64 // bytes of body or chunk data left to skip
	size     int64 // chunk size being parsed
	sizeN    int   // hex digits seen
	sizePart uint8 // 0 digits, 1 extension, 2 trailing whitespace
}

type pstate uint8

const (
	sHeadStart pstate = iota // before a request line (CR and LF skipped)
	sRequestLine
	sLineStart // start of a header line
	sName
	sValue
	sBody       // Content-Length body data
	sChunkSize  // a chunk-size line
	sChunkData  // chunk data
	sChunkEnd   // the CRLF after chunk data
	sTrailStart // start of a trailer line, or the final empty line
	sTrailLine  // inside a trailer line
	sStopped    // lost track, or not HTTP any more
)

type field uint8

const (
	fOther field = iota
	fCL
	fTE
)

const (
	nameCL = "content-length"
	nameTE = "transfer-encoding"
)

func (o *observer) stop() { o.st = sStopped }

func (o *observer) isBad(i int) bool { return o.badHead != 0 && i >= o.badHead-1 }

// feed advances the observer over p. Only header names, Content-Length
// values and chunk sizes are looked at byte by byte; request lines, other
// header values, trailers and body data are skipped in bulk.
func (o *observer) feed(p []byte) {
	for i := 0; i < len(p); {
		switch o.st {
		case sStopped:
			return
		case sBody, sChunkData:
			n := int64(len(p) - i)
			if n > o.remain {
				n = o.remain
			}
			o.remain -= n
			i += int(n)
			if o.remain == 0 {
				if o.st == sBody {
					o.st = sHeadStart
				} else {
					o.st = sChunkEnd
				}
			}
			continue
		case sName:
			if !o.maybeCL && !o.maybeTE {
				// A header that does not matter: its value is skipped
				// with it (a line without a colon is rejected anyway).
				o.st, o.cur = sValue, fOther
				continue
			}
		case sRequestLine, sValue, sTrailLine:
			if o.st == sValue && o.cur == fCL {
				break // parsed byte by byte
			}
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				o.skipped(p[i:])
				return
			}
			o.skipped(p[i : i+j])
			i += j // at the LF, which step handles
		}
		o.step(p[i])
		i++
	}
}

// skipped notes bytes of a line that feed skipped: of a request line, the
// last ones are its version.
func (o *observer) skipped(b []byte) {
	if o.st != sRequestLine {
		return
	}
	k, n := len(b), 0
	for k > 0 && n < len(o.tail) {
		k--
		if b[k] != '\r' {
			n++
		}
	}
	for _, c := range b[k:] {
		if c != '\r' {
			o.requestLineByte(c)
		}
	}
}

// step advances the observer over one byte outside body data.
func (o *observer) step(c byte) {
	if c == '\r' {
		// net/http trims the CR of a CRLF line end; a CR anywhere else
		// makes it reject the request, so ignoring every CR is lenient.
		return
	}
	switch o.st {
	case sHeadStart:
		if c == '\n' {
			return // net/http tolerates a few empty lines after a POST body
		}
		o.startHead()
		o.st = sRequestLine
		o.requestLineByte(c)
	case sRequestLine:
		if c == '\n' {
			o.http10 = o.tailN >= 8 && string(o.tail[:]) == "HTTP/1.0"
			o.st = sLineStart
			return
		}
		o.requestLineByte(c)
	case sLineStart:
		switch c {
		case '\n':
			o.endHead()
		case ' ', '\t':
			// A folded continuation of the previous header's value,
			// joined with a space.
			o.valueByte(' ')
			o.st = sValue
		default:
			o.cur, o.nameIdx, o.maybeCL, o.maybeTE = fOther, 0, true, true
			o.st = sName
			o.nameByte(c)
		}
	case sName:
		switch c {
		case ':':
			o.cur = fOther
			switch {
			case o.maybeCL && o.nameIdx == len(nameCL):
				if o.hasCL {
					// Another Content-Length: net/http accepts repeats
					// of one value only.
					if o.clPhase == 0 || o.clSeen && o.clFirst != o.cl {
						o.stop()
						return
					}
					o.clFirst, o.clSeen = o.cl, true
				}
				o.cur = fCL
				o.hasCL = true
				o.cl, o.clPhase = 0, 0
			case o.maybeTE && o.nameIdx == len(nameTE):
				o.cur = fTE
				o.hasTE = true
			}
			o.st = sValue
		case '\n':
			o.stop() // no colon: net/http rejects the header
		default:
			o.nameByte(c)
		}
	case sValue:
		if c == '\n' {
			o.st = sLineStart
			return
		}
		o.valueByte(c)
	case sChunkSize:
		o.chunkSizeByte(c)
	case sChunkEnd:
		if c != '\n' {
			o.stop() // net/http wants CRLF right after the data
			return
		}
		o.st, o.size, o.sizeN, o.sizePart = sChunkSize, 0, 0, 0
	case sTrailStart:
		if c == '\n' {
			o.st = sHeadStart // end of the chunked message
			return
		}
		o.st = sTrailLine
	case sTrailLine:
		if c == '\n' {
			o.st = sTrailStart
		}
	}
}

func (o *observer) startHead() {
	o.http10, o.tailN = false, 0
	o.hasCL, o.hasTE, o.clSeen = false, false, false
	o.cl, o.clFirst, o.clPhase = 0, 0, 0
	o.cur = fOther
}

func (o *observer) requestLineByte(c byte) {
	copy(o.tail[:], o.tail[1:])
	o.tail[len(o.tail)-1] = c
	o.tailN++
}

func (o *observer) nameByte(c byte) {
	if 'A' <= c && c <= 'Z' {
		c += 'a' - 'A'
	}
	if o.maybeCL && (o.nameIdx >= len(nameCL) || nameCL[o.nameIdx] != c) {
		o.maybeCL = false
	}
	if o.maybeTE && (o.nameIdx >= len(nameTE) || nameTE[o.nameIdx] != c) {
		o.maybeTE = false
	}
	o.nameIdx++
}

// valueByte parses Content-Length values as net/http does: optional
// whitespace, decimal digits, optional whitespace.
func (o *observer) valueByte(c byte) {
	if o.cur != fCL {
		return
	}
	switch {
	case c == ' ' || c == '\t':
		if o.clPhase == 1 {
			o.clPhase = 2
		}
	case '0' <= c && c <= '9' && o.clPhase < 2:
		if o.cl > (1<<62)/10 {
			o.stop() // net/http refuses a length this large
			return
		}
		o.cl, o.clPhase = o.cl*10+int64(c-'0'), 1
	default:
		o.stop() // not a valid length: net/http rejects the request
	}
}

// endHead decides how the body of the request whose head just ended is
// framed, and whether that framing is ambiguous.
func (o *observer) endHead() {
	if o.hasCL {
		if o.clPhase == 0 || o.clSeen && o.clFirst != o.cl {
			o.stop() // empty or conflicting lengths: net/http rejects
			return
		}
	}
	o.heads++
	if o.hasTE && (o.hasCL || o.http10) {
		// RFC 9112 §6.1. The request is refused and the connection
		// closed, so what follows is never served: stop here.
		o.badHead = o.heads
		o.stop()
		return
	}
	switch {
	case o.hasTE:
		// net/http accepts only "chunked" here (and rejects the rest).
		o.st, o.size, o.sizeN, o.sizePart = sChunkSize, 0, 0, 0
	case o.hasCL && o.cl > 0:
		o.st, o.remain = sBody, o.cl
	default:
		o.st = sHeadStart
	}
}

// chunkSizeByte parses a chunk-size line as net/http does: hex digits,
// then optionally ";extension", then optionally trailing whitespace.
func (o *observer) chunkSizeByte(c byte) {
	if c == '\n' {
		if o.sizeN == 0 {
			o.stop() // empty size: net/http rejects
			return
		}
		if o.size == 0 {
			o.st = sTrailStart
			return
		}
		o.st, o.remain = sChunkData, o.size
		return
	}
	switch o.sizePart {
	case 0:
		switch {
		case c == ';':
			o.sizePart = 1
		case c == ' ' || c == '\t':
			o.sizePart = 2
		default:
			d, ok := unhex(c)
			if !ok || o.sizeN >= 16 || o.size > 1<<58 {
				o.stop() // not hex, or too large: net/http rejects
				return
			}
			o.size, o.sizeN = o.size<<4|int64(d), o.sizeN+1
		}
	case 1:
		// Extension: net/http ignores its content (within a line limit).
	case 2:
		if c != ' ' && c != '\t' {
			o.stop()
		}
	}
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
