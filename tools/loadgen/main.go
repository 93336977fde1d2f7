// Command loadgen drives closed-loop HTTP clients for the benchmarks (bench/loadgen.py).
//
// It reads a plan (JSON) on standard input: the base URL, headers every request carries,
// and each client's requests in order. Each client is a goroutine that sends its requests
// one after another, the next when the answer to the last is read, so N clients keep at
// most N requests in flight, as N people at their desks would. It writes the seconds each
// request took, by name, and the run's wall time (JSON) on standard output.
//
// Why Go: a client in Python (httpx) spent 2-3 ms of CPU per request, on the same two
// cores as the server it measured, and was most of the "floor" it reported (GET /health:
// 340 requests/s, p99 240 ms from httpx; 2,800/s, p99 14 ms from a Go client).
//
// An answer other than 200 or 201 stops the run: exit status 1, the request and the
// answer on standard error. Standard library only.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// Request is one request of a client: its name in the report, method, path and body
// (JSON; null: none).
type Request struct {
	Name   string          `json:"name"`
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body"`
}

// Plan is what to send: every client's requests, in order.
type Plan struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Clients [][]Request       `json:"clients"`
}

// Report is what was measured: seconds per request by name, and the run's wall time.
type Report struct {
	Seconds   float64              `json:"seconds"`
	Latencies map[string][]float64 `json:"latencies"`
}

func main() {
	var plan Plan
	if err := json.NewDecoder(os.Stdin).Decode(&plan); err != nil {
		fail(fmt.Errorf("reading the plan: %w", err))
	}
	report, err := run(plan)
	if err != nil {
		fail(err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(report); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}

func run(plan Plan) (Report, error) {
	connections := len(plan.Clients) + 1
	client := &http.Client{
		Timeout: 120 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: connections, MaxIdleConnsPerHost: connections,
			MaxConnsPerHost: connections, DisableCompression: true,
		},
	}
	measured := make([]map[string][]float64, len(plan.Clients))
	failures := make(chan error, len(plan.Clients))
	var clients sync.WaitGroup
	start := time.Now()
	for i, own := range plan.Clients {
		clients.Add(1)
		go func(i int, own []Request) {
			defer clients.Done()
			measured[i] = map[string][]float64{}
			for _, request := range own {
				began := time.Now()
				if err := send(client, plan, request); err != nil {
					failures <- err
					return
				}
				took := time.Since(began).Seconds()
				measured[i][request.Name] = append(measured[i][request.Name], took)
			}
		}(i, own)
	}
	clients.Wait()
	report := Report{Seconds: time.Since(start).Seconds(), Latencies: map[string][]float64{}}
	close(failures)
	if err := <-failures; err != nil {
		return report, err
	}
	for _, own := range measured {
		for name, seconds := range own {
			report.Latencies[name] = append(report.Latencies[name], seconds...)
		}
	}
	return report, nil
}

// send sends one request and reads its whole answer (so that the connection is kept).
func send(client *http.Client, plan Plan, request Request) error {
	var body io.Reader
	if len(request.Body) > 0 && string(request.Body) != "null" {
		body = bytes.NewReader(request.Body)
	}
	outgoing, err := http.NewRequest(request.Method, plan.URL+request.Path, body)
	if err != nil {
		return err
	}
	for name, value := range plan.Headers {
		outgoing.Header.Set(name, value)
	}
	if body != nil {
		outgoing.Header.Set("Content-Type", "application/json")
	}
	answer, err := client.Do(outgoing)
	if err != nil {
		return fmt.Errorf("%s %s: %w", request.Method, request.Path, err)
	}
	defer answer.Body.Close()
	text, err := io.ReadAll(answer.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", request.Method, request.Path, err)
	}
	if answer.StatusCode != http.StatusOK && answer.StatusCode != http.StatusCreated {
		return fmt.Errorf("%s %s (%s): %d %s", request.Method, request.Path, request.Name,
			answer.StatusCode, text)
	}
	return nil
}
