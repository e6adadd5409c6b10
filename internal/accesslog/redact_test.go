package accesslog

import (
	"bytes"
	"strings"
	"testing"
)

func TestRedactQueryVariants(t *testing.T) {
	l := New(&bytes.Buffer{}, []string{"X-Session", "Sig.V2"})
	for _, tc := range []struct{ name, in, want string }{
		{"clean", "a=1&b=2;c=3", "a=1&b=2;c=3"},
		{"array suffix", "api_key[]=s1&api_key[]=s2", "api_key[]=REDACTED&api_key[]=REDACTED"},
		{"indexed array", "api_key[0]=s&x[1]=y", "api_key[0]=REDACTED&x[1]=y"},
		{"map part", "auth[token]=s&auth[user]=bob", "auth[token]=REDACTED&auth[user]=bob"},
		{"nested map part", "a[b][access_token]=s", "a[b][access_token]=REDACTED"},
		{"encoded brackets", "api_key%5B%5D=s", "api_key%5B%5D=REDACTED"},
		{"semicolon pairs", "page=1;token=s;q=x", "page=1;token=REDACTED;q=x"},
		{"mixed separators", "a=1;api_key=s&token=t", "a=1;api_key=REDACTED&token=REDACTED"},
		{"encoded underscore", "api%5Fkey=s", "api%5Fkey=REDACTED"},
		{"encoded lower-case hex", "api%5fkey=s", "api%5fkey=REDACTED"},
		{"fully encoded", "%61%70%69%5f%6b%65%79=s", "%61%70%69%5f%6b%65%79=REDACTED"},
		{"upper case", "API_KEY=s", "API_KEY=REDACTED"},
		{"mixed case", "Access_Token=s&ReFrEsH_ToKeN=r", "Access_Token=REDACTED&ReFrEsH_ToKeN=REDACTED"},
		{"PHP dot", "api.key=s", "api.key=REDACTED"},
		{"space as plus", "api+key=s", "api+key=REDACTED"},
		{"hyphen", "access-token=s", "access-token=REDACTED"},
		{"spaces around", "+api_key=s&%20token%20=t&auth[+token]=u", "+api_key=REDACTED&%20token%20=REDACTED&auth[+token]=REDACTED"},
		{"tab", "%09token=s", "%09token=REDACTED"},
		{"configured with case and hyphen", "x_session=s&X-SESSION=t&sig_v2=u", "x_session=REDACTED&X-SESSION=REDACTED&sig_v2=REDACTED"},
		{"bad escape", "api%zzkey=s", "api%zzkey=REDACTED"},
		{"truncated escape", "token%5=s", "token%5=REDACTED"},
		{"name without value", "token&a=1", "token&a=1"},
		{"empty pairs", "&;=&token=s;", "&;=&token=REDACTED;"},
		{"value holds separators", "q=a%26token%3Dx", "q=a%26token%3Dx"},
		{"overlong name", strings.Repeat("n", maxNameLen+1) + "=s", strings.Repeat("n", maxNameLen+1) + "=REDACTED"},
		{"long clean name", strings.Repeat("n", maxNameLen) + "=s", strings.Repeat("n", maxNameLen) + "=s"},
		{"not a prefix match", "tokens=1&keyboard=2&api_keys=3", "tokens=1&keyboard=2&api_keys=3"},
		{"camel case", "accessToken=s&refreshToken=t&apiKey=u&AccessToken=v", "accessToken=REDACTED&refreshToken=REDACTED&apiKey=REDACTED&AccessToken=REDACTED"},
		{"header-like names", "x-api-key=s&X-Auth-Token=t&authorization=u", "x-api-key=REDACTED&X-Auth-Token=REDACTED&authorization=REDACTED"},
		{"signed URLs", "X-Amz-Security-Token=s&X-Amz-Signature=t&X-Goog-Signature=u&X-Amz-Date=1", "X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED&X-Goog-Signature=REDACTED&X-Amz-Date=1"},
		{"OAuth assertions", "client_assertion=s&assertion=t&client_assertion_type=x", "client_assertion=REDACTED&assertion=REDACTED&client_assertion_type=x"},
		{"other credential names", "private_token=s&jwt=t&pwd=u&pass=v&auth=w&session=x&JSESSIONID=y&PHPSESSID=z",
			"private_token=REDACTED&jwt=REDACTED&pwd=REDACTED&pass=REDACTED&auth=w&session=REDACTED&JSESSIONID=REDACTED&PHPSESSID=REDACTED"},
		{"encoded control character", "api_key%00=s&token%0A=t", "api_key%00=REDACTED&token%0A=REDACTED"},
		{"suffix in a map part", "creds[aws_secret]=s", "creds[aws_secret]=REDACTED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := l.RedactQuery(tc.in); got != tc.want {
				t.Errorf("RedactQuery(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

// Redaction allocates nothing: not on a clean query, not when names need
// case folding or decoding, not when values are replaced.
func TestRedactQueryAllocs(t *testing.T) {
	l := New(&bytes.Buffer{}, []string{"session"})
	buf := make([]byte, 0, 4096)
	for _, q := range []string{
		"page=2&sort=name;q=x",
		"API_KEY=s&Access_Token=t",
		"api%5Fkey[]=s;auth[token]=t&Page=1",
	} {
		if n := testing.AllocsPerRun(100, func() { buf = l.appendRedactedQuery(buf[:0], q) }); n != 0 {
			t.Errorf("%q: %v allocations", q, n)
		}
	}
}

func BenchmarkRedactQuery(b *testing.B) {
	l := New(&bytes.Buffer{}, nil)
	buf := make([]byte, 0, 256)
	for _, q := range []string{"page=2&sort=name&q=gatehouse", "page=2&Access_Token=x&api_key[]=y"} {
		b.Run(q, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf = l.appendRedactedQuery(buf[:0], q)
			}
		})
	}
}

// FuzzRedactQuery checks that redaction keeps the query's shape (same
// separators, same names, values either kept or REDACTED), that the fast
// path for plain names agrees with the general one, and that a secret
// name's value never survives.
func FuzzRedactQuery(f *testing.F) {
	for _, s := range []string{"a=1&token=x", "API_KEY[]=x;b=2", "%5F=1&a%zz=2", "auth[ token ]=x", "=&;&"} {
		f.Add(s)
	}
	l := New(&bytes.Buffer{}, []string{"session"})
	f.Fuzz(func(t *testing.T, q string) {
		out := l.RedactQuery(q)
		in, got := splitPairs(q), splitPairs(out)
		if len(in) != len(got) {
			t.Fatalf("%q → %q: %d pairs, want %d", q, out, len(got), len(in))
		}
		for i := range in {
			name, _, _ := strings.Cut(in[i], "=")
			cls := l.classify(name)
			if plainName(name) && len(name) <= maxNameLen && cls != l.classifySlow(name) {
				t.Fatalf("fast and general paths disagree on %q", name)
			}
			switch {
			case got[i] == in[i] && cls == nameClean:
			case cls != nameClean && (got[i] == name+"="+Redacted || got[i] == name && !strings.Contains(in[i], "=")):
			default:
				t.Fatalf("pair %q became %q (class %d)", in[i], got[i], cls)
			}
		}
	})
}

// splitPairs splits on both separators, keeping empty pairs.
func splitPairs(q string) []string {
	var out []string
	for {
		i := strings.IndexAny(q, "&;")
		if i < 0 {
			return append(out, q)
		}
		out = append(out, q[:i])
		q = q[i+1:]
	}
}
