package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestConnKeepsGoing sends requests over one conn to servers that answer
// in the ways HTTP/1.1 allows: with a length, chunked, asking to close,
// and closing a kept-alive connection without a word (which a reused
// connection only notices when it next writes or reads).
func TestConnKeepsGoing(t *testing.T) {
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request)
		// conns is how many connections the server should see for 5 requests.
		conns int64
	}{
		{"length", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"ok":true}`)
		}, 1},
		{"chunked", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			for range 3 {
				io.WriteString(w, "part ")
				w.(http.Flusher).Flush()
			}
		}, 1},
		{"connection close", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusAccepted)
		}, 5},
		{"closed while idle", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusAccepted)
			w.(http.Flusher).Flush()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				// The response is out; the connection goes away after it
				// without saying so.
				go func() { time.Sleep(20 * time.Millisecond); conn.Close() }()
			}
		}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var conns, bodies atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				if string(b) == "hello" && r.Header.Get("X-Test") == "yes" && r.ContentLength == 5 {
					bodies.Add(1)
				}
				tt.handler(w, r)
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			c, err := newConn(srv.URL + "/webhook?x=1")
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			for i := range 5 {
				status, err := c.do(time.Now().Add(5*time.Second), []header{{"X-Test", "yes"}}, []byte("hello"))
				if err != nil || status != http.StatusAccepted {
					t.Fatalf("request %d: status %d, %v", i, status, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if got := bodies.Load(); got != 5 {
				t.Errorf("server saw %d whole requests, want 5", got)
			}
			if got := conns.Load(); got != tt.conns {
				t.Errorf("server saw %d connections, want %d", got, tt.conns)
			}
		})
	}
}
