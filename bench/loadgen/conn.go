package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// conn is one worker's keep-alive HTTP/1.1 connection. The request is
// written from one reused buffer and the response read with net/http's
// own parser. net/http's Transport spends two goroutines and several
// channel handoffs on each request; on a two-core machine that CPU is
// taken from the server being measured, and the load generator's share
// of the machine is not what the figures are about.
type conn struct {
	host    string // host:port to dial
	reqLine []byte // "POST /path HTTP/1.1\r\nHost: ...\r\n"
	c       net.Conn
	br      *bufio.Reader
	buf     []byte
	reused  bool // c has carried a request before
}

func newConn(target string) (*conn, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, errors.New("-url must be http://")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	line := "POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n"
	return &conn{host: host, reqLine: []byte(line)}, nil
}

// header is one request header line's name and value.
type header struct{ name, value string }

// do sends one POST and reads its whole response, returning its status.
// Like net/http, it retries once on a fresh connection when a reused one
// turns out to have been closed before any of the response came back.
func (c *conn) do(deadline time.Time, headers []header, body []byte) (int, error) {
	status, err := c.try(deadline, headers, body)
	if err != nil && c.reused && errors.Is(err, errStale) {
		c.close()
		status, err = c.try(deadline, headers, body)
	}
	return status, err
}

var errStale = errors.New("connection closed before the response")

func (c *conn) try(deadline time.Time, headers []header, body []byte) (int, error) {
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.host, time.Until(deadline))
		if err != nil {
			return 0, err
		}
		c.c, c.br, c.reused = nc, bufio.NewReaderSize(nc, 16<<10), false
	}
	reused := c.reused
	c.reused = true
	c.c.SetDeadline(deadline)
	b := append(c.buf[:0], c.reqLine...)
	for _, h := range headers {
		b = append(b, h.name...)
		b = append(b, ": "...)
		b = append(b, h.value...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	c.buf = b
	bufs := net.Buffers{b, body}
	if _, err := bufs.WriteTo(c.c); err != nil {
		c.close()
		if reused {
			return 0, errStale
		}
		return 0, err
	}
	if reused {
		// A connection the server has closed shows it at the first read.
		if _, err := c.br.Peek(1); err != nil {
			c.close()
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				return 0, errStale
			}
			return 0, err
		}
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	return resp.StatusCode, err
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c, c.br = nil, nil
	}
}
