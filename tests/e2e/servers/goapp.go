// A Go net/http server and client for the end-to-end tests: goroutines
// move between threads, so one connection's reads and writes come from
// several threads of the process.
//
//	goapp serve ADDR             /items/N: 200 (POST: 201), /fail: 500
//	goapp load URL G N           G goroutines, each N GETs of /items/I on
//	                             kept-alive connections then one POST; then
//	                             one GET /fail; prints "done dials=D"
package main

import (
	"context"
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

func serve(addr string) {
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
	if err := http.ListenAndServe(addr, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func call(c *http.Client, method, url, body string) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err == nil {
		var resp *http.Response
		if resp, err = c.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return
		}
	}
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
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

func main() {
	if len(os.Args) == 3 && os.Args[1] == "serve" {
		serve(os.Args[2])
		return
	}
	if len(os.Args) == 5 && os.Args[1] == "load" {
		g, err1 := strconv.Atoi(os.Args[3])
		n, err2 := strconv.Atoi(os.Args[4])
		if err1 == nil && err2 == nil {
			load(os.Args[2], g, n)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "usage: goapp serve ADDR | goapp load URL G N")
	os.Exit(2)
}
