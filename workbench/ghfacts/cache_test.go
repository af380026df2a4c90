package ghfacts

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/gitpoli/gitpoli/workbench"
)

// etagServer answers like GitHub: each response with an ETag of its body
// and "Cache-Control: private, max-age=60", and 304 with no body to a
// request whose If-None-Match is still the body's.
type etagServer struct {
	mu    sync.Mutex
	files map[string]string // path → testdata file
	sent  map[int]int       // status → count
}

func (s *etagServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	file, ok := s.files[r.URL.Path]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	body, err := os.ReadFile("testdata/" + file)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	etag := fmt.Sprintf(`"%x"`, sha256.Sum256(body))
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "private, max-age=60, s-maxage=60")
	w.Header().Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
	status := http.StatusOK
	if r.Header.Get("If-None-Match") == etag {
		status = http.StatusNotModified
	}
	s.mu.Lock()
	s.sent[status]++
	s.mu.Unlock()
	w.WriteHeader(status)
	if status == http.StatusOK {
		w.Write(body)
	}
}

// TestCacheAsksWithETags gathers a pull request's reviews and files three
// times through one cache: the second time every request is answered 304
// (no rate limit spent) with the same facts; after a new review the
// reviews are fetched in full again, and the new review is seen at once
// though GitHub said max-age=60.
func TestCacheAsksWithETags(t *testing.T) {
	srv := &etagServer{sent: map[int]int{}, files: map[string]string{
		"/repos/o/r/pulls/35/reviews": "pulls-list-reviews.owners-bot-pr35.json",
		"/repos/o/r/pulls/35/files":   "pulls-list-files.owners-bot-pr35.json",
	}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	cache := NewCache(1 << 20)
	pr := workbench.PR{Repo: workbench.Repo{Owner: "o", Name: "r"}, Number: 35}
	gather := func() ([]workbench.Review, []workbench.File) {
		t.Helper()
		c, err := New(ts.Client(), ts.URL, cache)
		if err != nil {
			t.Fatal(err)
		}
		reviews, err := c.Reviews(context.Background(), pr)
		if err != nil {
			t.Fatal(err)
		}
		files, err := c.Files(context.Background(), pr)
		if err != nil {
			t.Fatal(err)
		}
		return reviews, files
	}
	r1, f1 := gather()
	r2, f2 := gather()
	if srv.sent[200] != 2 || srv.sent[304] != 2 {
		t.Errorf("GitHub answered %v; want 2 in full, then 2 not modified", srv.sent)
	}
	if fmt.Sprint(r1, f1) != fmt.Sprint(r2, f2) || len(r2) != 1 || len(f2) != 1 {
		t.Errorf("from the cache %v %v, first %v %v", r2, f2, r1, f1)
	}
	srv.mu.Lock()
	srv.files["/repos/o/r/pulls/35/reviews"] = "pulls-list-reviews.owners-bot-pr17.json"
	srv.mu.Unlock()
	r3, _ := gather()
	if srv.sent[200] != 3 || srv.sent[304] != 3 {
		t.Errorf("GitHub answered %v; want the changed reviews in full and the files not modified", srv.sent)
	}
	if fmt.Sprint(r3) == fmt.Sprint(r1) {
		t.Errorf("the new reviews were not seen: %v", r3)
	}
}

func TestCacheHoldsItsBound(t *testing.T) {
	c := NewCache(10)
	c.Set("a", []byte("12345"))
	c.Set("b", []byte("12345"))
	c.Get("a") // b is now the least recently used
	c.Set("c", []byte("123"))
	if _, ok := c.Get("b"); ok || c.Bytes() != 8 {
		t.Errorf("holds %d bytes, b kept %v; want b evicted and 8 bytes", c.Bytes(), ok)
	}
	c.Set("big", make([]byte, 11))
	if _, ok := c.Get("big"); ok {
		t.Error("kept a response larger than the whole cache")
	}
}
