// A Go net/http server and client for the end-to-end tests: goroutines
// move between threads, so one connection's reads and writes come from
// several threads of the process. Over TLS, Go's own crypto/tls, HTTP/2
// by ALPN unless the peer offers only HTTP/1.1.
//
//	goapp serve ADDR             /items/N: 200 (POST: 201), /fail: 500,
//	                             /sonde.test.Shop/Get: a gRPC unary call
//	                             (status NOT_FOUND when the request's
//	                             message says "missing", else OK), else 404
//	goapp serve-tls ADDR CERT KEY
//	                             the same over TLS
//	goapp load URL G N           G goroutines, each N GETs of /items/I on
//	                             kept-alive connections then one POST; then
//	                             one GET /fail; prints "done dials=D"
//	goapp load-tls URL N         N GETs of URL/items/I over TLS, one at a
//	                             time, then one GET of URL/fail; prints
//	                             "done proto=P" (P: the responses' protocol)
//	goapp rpc URL OK MISSING     over TLS, OK gRPC calls of
//	                             sonde.test.Shop/Get that succeed, then
//	                             MISSING that do not; prints
//	                             "done ok=N not_found=M" as the trailers said
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/items/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusCreated)
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	mux.HandleFunc("/sonde.test.Shop/Get", shopGet)
	return mux
}

// A gRPC unary call on HTTP/2: length-prefixed messages (a zero flag
// byte, a 4-byte big-endian length) and the status in the trailers.
func shopGet(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status")
	w.WriteHeader(http.StatusOK)
	status := "0"
	if bytes.Contains(body, []byte("missing")) {
		status = "5"
	} else {
		w.Write([]byte{0, 0, 0, 0, 0})
	}
	w.Header().Set("Grpc-Status", status)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func serve(addr string) {
	fail(http.ListenAndServe(addr, handler()))
}

func serveTLS(addr, cert, key string) {
	fail(http.ListenAndServeTLS(addr, cert, key, handler()))
}

// Makes one request and reads its answer; returns its protocol.
func call(c *http.Client, method, url, body string) string {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err == nil {
		var resp *http.Response
		if resp, err = c.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.Proto
		}
	}
	fail(err)
	return ""
}

func load(url string, goroutines, n int) {
	var dials int64
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport := &http.Transport{
		MaxIdleConnsPerHost: goroutines,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			atomic.AddInt64(&dials, 1)
			return dialer.DialContext(ctx, network, addr)
		},
	}
	c := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				call(c, http.MethodGet, url+"/items/"+strconv.Itoa(i), "")
			}
			call(c, http.MethodPost, url+"/items/0", "name=x")
		}()
	}
	wg.Wait()
	call(c, http.MethodGet, url+"/fail", "")
	fmt.Printf("done dials=%d\n", atomic.LoadInt64(&dials))
}

func tlsClient() *http.Client {
	transport := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: true,
	}
	return &http.Client{Transport: transport, Timeout: 10 * time.Second}
}

func grpcCall(c *http.Client, url, payload string) string {
	msg := append([]byte{0, 0, 0, 0, byte(len(payload))}, payload...)
	req, err := http.NewRequest(http.MethodPost, url+"/sonde.test.Shop/Get",
		bytes.NewReader(msg))
	if err != nil {
		fail(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, err := c.Do(req)
	if err != nil {
		fail(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Trailer.Get("Grpc-Status")
}

func rpc(url string, ok, missing int) {
	c := tlsClient()
	counts := map[string]int{}
	for i := 0; i < ok+missing; i++ {
		payload := "item"
		if i >= ok {
			payload = "missing"
		}
		counts[grpcCall(c, url, payload)]++
	}
	fmt.Printf("done ok=%d not_found=%d\n", counts["0"], counts["5"])
}

func loadTLS(url string, n int) {
	c := tlsClient()
	proto := ""
	for i := 0; i < n; i++ {
		proto = call(c, http.MethodGet, url+"/items/"+strconv.Itoa(i), "")
	}
	call(c, http.MethodGet, url+"/fail", "")
	fmt.Printf("done proto=%s\n", proto)
}

func counts(args ...string) []int {
	var out []int
	for _, a := range args {
		n, err := strconv.Atoi(a)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}

func main() {
	a := os.Args[1:]
	switch {
	case len(a) == 2 && a[0] == "serve":
		serve(a[1])
	case len(a) == 4 && a[0] == "serve-tls":
		serveTLS(a[1], a[2], a[3])
	case len(a) == 4 && a[0] == "load" && counts(a[2:]...) != nil:
		n := counts(a[2:]...)
		load(a[1], n[0], n[1])
	case len(a) == 3 && a[0] == "load-tls" && counts(a[2]) != nil:
		loadTLS(a[1], counts(a[2])[0])
	case len(a) == 4 && a[0] == "rpc" && counts(a[2:]...) != nil:
		n := counts(a[2:]...)
		rpc(a[1], n[0], n[1])
	default:
		fmt.Fprintln(os.Stderr, "usage: goapp serve ADDR | "+
			"goapp serve-tls ADDR CERT KEY | goapp load URL G N | "+
			"goapp load-tls URL N | goapp rpc URL OK MISSING")
		os.Exit(2)
	}
}
