package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

var echoTarget = &url.URL{Scheme: "builtin", Opaque: "echo"}

func TestEchoThroughProxy(t *testing.T) {
	secrets := []string{"Bearer s3cr3t-token", "session=s3cr3t-cookie", "s3cr3t-api-key", "Basic s3cr3t-proxy"}
	g := newGateway(t, Config{
		Targets:     []*url.URL{echoTarget},
		StripPrefix: "/demo",
		AddPrefix:   "/v1",
		Resolver:    mustResolver(t, "10.0.0.0/8"),
	}, 0)
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/demo/things/a%2Fb?x=1&y=2", strings.NewReader("hello body"))
	req.Host = "gw.example"
	req.Header.Set("Authorization", secrets[0])
	req.Header.Set("Cookie", secrets[1])
	req.Header.Set("X-Api-Key", secrets[2])
	req.Header.Set("Proxy-Authorization", secrets[3])
	req.Header.Set("X-Forwarded-For", "203.0.113.66")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "hop")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if strings.Contains(string(raw), "s3cr3t") {
		t.Fatalf("echo output contains a secret:\n%s", raw)
	}
	var got echoReport
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	for _, check := range []struct{ field, got, want string }{
		{"method", got.Method, "POST"},
		{"path", got.Path, "/v1/things/a%2Fb"},
		{"raw_query", got.RawQuery, "x=1&y=2"},
		{"host", got.Host, "echo"},
		{"proto", got.Proto, "HTTP/1.1"},
		{"remote_addr", got.RemoteAddr, inProcessRemoteAddr},
		{"Authorization", strings.Join(got.Headers["Authorization"], ","), redacted},
		{"Cookie", strings.Join(got.Headers["Cookie"], ","), redacted},
		{"X-Api-Key", strings.Join(got.Headers["X-Api-Key"], ","), redacted},
		{"X-Multi", strings.Join(got.Headers["X-Multi"], ","), "a,b"},
		{"X-Forwarded-For", strings.Join(got.Headers["X-Forwarded-For"], ","), "127.0.0.1"},
		{"X-Forwarded-Host", strings.Join(got.Headers["X-Forwarded-Host"], ","), "gw.example"},
		{"Forwarded", strings.Join(got.Headers["Forwarded"], ","), `for=127.0.0.1;host="gw.example";proto=http`},
	} {
		if check.got != check.want {
			t.Errorf("%s = %q, want %q", check.field, check.got, check.want)
		}
	}
	if got.BodyBytes != int64(len("hello body")) {
		t.Errorf("body_bytes = %d", got.BodyBytes)
	}
	for _, hop := range []string{"X-Hop", "Connection", "Proxy-Authorization"} {
		if _, ok := got.Headers[hop]; ok {
			t.Errorf("echo received hop-by-hop header %s", hop)
		}
	}
	if o := g.next(t); o.err != nil || o.res.Target != "builtin:echo" || o.res.Status != http.StatusOK {
		t.Fatalf("outcome %+v", o)
	}
}

func TestEchoHandlerRedacts(t *testing.T) {
	for _, tc := range []struct {
		header string
		values []string
	}{
		{"Authorization", []string{"Bearer a", "Basic b"}},
		{"Proxy-Authorization", []string{"Basic c"}},
		{"Cookie", []string{"a=1", "b=2"}},
		{"X-Api-Key", []string{"k"}},
	} {
		t.Run(tc.header, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			req.Header[tc.header] = tc.values
			rec := httptest.NewRecorder()
			EchoHandler().ServeHTTP(rec, req)
			var got echoReport
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			vals := got.Headers[tc.header]
			if len(vals) != len(tc.values) {
				t.Fatalf("%s has %d values, want %d (one mask per value)", tc.header, len(vals), len(tc.values))
			}
			for _, v := range vals {
				if v != redacted {
					t.Fatalf("%s value %q not redacted", tc.header, v)
				}
			}
		})
	}
}

func TestEchoBodyOverLimit(t *testing.T) {
	g := newGateway(t, Config{Targets: []*url.URL{echoTarget}}, 10)
	resp, err := http.Post(g.URL+"/", "text/plain", strings.NewReader(strings.Repeat("x", 100)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", resp.StatusCode)
	}
	checkErr(t, g.next(t).err, nil)
}
