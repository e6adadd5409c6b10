package framing

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func observe(chunks ...[]byte) *observer {
	o := &observer{}
	for _, c := range chunks {
		o.feed(c)
	}
	return o
}

// splits feeds s whole, byte by byte and in two halves at every point.
func splits(s string) [][][]byte {
	b := []byte(s)
	out := [][][]byte{{b}}
	one := make([][]byte, 0, len(b))
	for i := range b {
		one = append(one, b[i:i+1])
	}
	out = append(out, one)
	for i := 1; i < len(b); i += 7 {
		out = append(out, [][]byte{b[:i], b[i:]})
	}
	return out
}

// goRequests is how many requests net/http's parser reads from s, each
// with its body read to the end, before the first error.
func goRequests(s string) int {
	br := bufio.NewReader(strings.NewReader(s))
	n := 0
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return n
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return n
		}
		n++
	}
}

func TestObserver(t *testing.T) {
	const get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range []struct {
		name      string
		stream    string
		heads     int
		bad       int  // index+1 of the ambiguous head; 0 none
		agreeWith bool // net/http parses exactly heads requests
	}{
		{"one GET", get, 1, 0, true},
		{"pipelined GETs", get + get + get, 3, 0, true},
		{"Content-Length body that looks like a request", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(get)) + "\r\n\r\n" + get + get, 2, 0, true},
		{"chunked body that looks like a request", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(get)), 16) + "\r\n" + get + "\r\n0\r\n\r\n" + get, 2, 0, true},
		{"chunk extensions and trailers", "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: Chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n" + get, 2, 0, true},
		{"bare LF heads", "GET / HTTP/1.1\nHost: a\n\n" + get, 2, 0, true},
		{"folded Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n 3\r\n\r\nabc" + get, 2, 0, true},
		{"repeated equal Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc" + get, 2, 0, true},
		{"sixteen-digit chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000003\r\nabc\r\n0\r\n\r\n" + get, 2, 0, true},
		{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get, 1, 1, false},
		{"Transfer-Encoding first", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-length: 0\r\n\r\n0\r\n\r\n", 1, 1, false},
		{"ambiguous second request", get + "POST / HTTP/1.1\r\nHost: a\r\nCONTENT-LENGTH: 5\r\nTRANSFER-ENCODING: chunked\r\n\r\n0\r\n\r\n", 2, 2, false},
		{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", 1, 1, false},
		{"Transfer-Encoding in HTTP/1.0 without length", "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 1, 1, false},
		{"not quite the names", "GET / HTTP/1.1\r\nContent-Lengthy: 5\r\nX-Transfer-Encoding: chunked\r\n\r\n" + get, 2, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunks := range splits(tc.stream) {
				o := observe(chunks...)
				if o.heads != tc.heads || o.badHead != tc.bad {
					t.Fatalf("split %d: heads %d bad %d, want %d and %d", len(chunks), o.heads, o.badHead, tc.heads, tc.bad)
				}
			}
			if n := goRequests(tc.stream); tc.agreeWith && n != tc.heads {
				t.Fatalf("net/http reads %d requests, the observer %d", n, tc.heads)
			}
		})
	}
}

// TestObserverStopsWhereNetHTTPRejects: on framing net/http refuses, the
// observer stops (and Check then refuses every later request).
func TestObserverStopsWhereNetHTTPRejects(t *testing.T) {
	for _, body := range []string{"zz\r\n", "5 ;x\r\nhello\r\n", "\r\n", "3\r\nhello\r\n0\r\n\r\n", "11111111111111111\r\n"} {
		s := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body + "GET / HTTP/1.1\r\n\r\n"
		o := observe([]byte(s))
		if o.st != sStopped || o.heads != 1 {
			t.Errorf("%q: state %d heads %d, want stopped after 1", body, o.st, o.heads)
		}
	}
}

// FuzzObserver checks the one property Check relies on: wherever net/http
// reads n complete requests, the observer saw at least n heads (it never
// loses track of a stream net/http accepts), unless it flagged an
// ambiguous head among them.
func FuzzObserver(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<14 {
			return
		}
		n := goRequests(string(data))
		o := observe(data)
		if o.badHead == 0 && o.heads < n {
			t.Fatalf("net/http read %d requests, the observer followed %d heads", n, o.heads)
		}
		if o.badHead != 0 && o.badHead > n+1 {
			t.Fatalf("ambiguous head %d after only %d requests net/http read", o.badHead, n)
		}
		// Split feeding must agree with whole feeding.
		if len(data) > 1 {
			h := len(data) / 2
			o2 := observe(data[:h], data[h:])
			if o2.heads != o.heads || o2.badHead != o.badHead || o2.st != o.st {
				t.Fatalf("split feeding differs: %+v vs %+v", *o2, *o)
			}
		}
	})
}

// BenchmarkObserver is the cost the observer adds to a typical request
// head and to a 64 KiB chunked upload.
func BenchmarkObserver(b *testing.B) {
	head := []byte("GET /api/users/42?page=2 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\n" +
		"Accept: application/json\r\nAuthorization: Bearer " + strings.Repeat("x", 600) + "\r\nX-Request-Id: 7b14f9f85899ef522d772873cca912bf\r\n\r\n")
	b.Run("head", func(b *testing.B) {
		o := &observer{}
		b.SetBytes(int64(len(head)))
		b.ReportAllocs()
		for b.Loop() {
			o.feed(head)
		}
	})
	upload := []byte("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
	for range 16 {
		upload = append(upload, "1000\r\n"...)
		upload = append(upload, make([]byte, 0x1000)...)
		upload = append(upload, "\r\n"...)
	}
	upload = append(upload, "0\r\n\r\n"...)
	b.Run("chunked_64KiB", func(b *testing.B) {
		o := &observer{}
		b.SetBytes(int64(len(upload)))
		b.ReportAllocs()
		for b.Loop() {
			o.feed(upload)
		}
	})
}
