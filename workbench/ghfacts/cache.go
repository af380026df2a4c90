package ghfacts

import (
	"container/list"
	"net/http"
	"sync"

	"github.com/gregjones/httpcache"
)

// Cache keeps GitHub's responses so that the facts of a pull request
// decided again soon after (a review, then a check completing, then a
// push) are asked for with their ETag: GitHub answers 304 when nothing
// changed, and a 304 costs nothing of the installation's rate limit.
// Every request is still sent: a cached response is never used unless
// GitHub says it still holds. It holds at most a given number of bytes,
// the least recently used going first.
type Cache struct {
	max int

	mu    sync.Mutex
	size  int
	order *list.List // of *cacheEntry, most recently used first
	byKey map[string]*list.Element
}

type cacheEntry struct {
	key  string
	data []byte
}

// NewCache returns a cache of at most maxBytes of responses.
func NewCache(maxBytes int) *Cache {
	return &Cache{max: maxBytes, order: list.New(), byKey: map[string]*list.Element{}}
}

var _ httpcache.Cache = (*Cache)(nil)

// Get implements httpcache.Cache.
func (c *Cache) Get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).data, true
}

// Set implements httpcache.Cache.
func (c *Cache) Set(key string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remove(key)
	if len(data) > c.max {
		return
	}
	c.byKey[key] = c.order.PushFront(&cacheEntry{key, data})
	c.size += len(data)
	for c.size > c.max {
		c.remove(c.order.Back().Value.(*cacheEntry).key)
	}
}

// Delete implements httpcache.Cache.
func (c *Cache) Delete(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remove(key)
}

func (c *Cache) remove(key string) {
	if el, ok := c.byKey[key]; ok {
		c.size -= len(el.Value.(*cacheEntry).data)
		c.order.Remove(el)
		delete(c.byKey, key)
	}
}

// Bytes is what the cache holds.
func (c *Cache) Bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// transport sends every request through the cache: GitHub's responses
// say "max-age=60", which would let a response stand a minute without
// asking, and a review given meanwhile would go unseen. Marked no-cache
// where they are stored, they are revalidated each time.
func (c *Cache) transport(next http.RoundTripper) http.RoundTripper {
	return &httpcache.Transport{Transport: revalidate{next}, Cache: c, MarkCachedResponses: true}
}

type revalidate struct{ next http.RoundTripper }

func (t revalidate) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil {
		resp.Header.Set("Cache-Control", "no-cache")
	}
	return resp, err
}
