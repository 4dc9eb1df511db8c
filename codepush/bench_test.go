package codepush

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadFixture builds 100 deployments with 10 releases each (1,000 releases)
// and 10,000 update-check query strings spread over them.
func loadFixture(tb testing.TB) (*Service, []string) {
	tb.Helper()
	ctx := context.Background()
	store := &MemStore{}
	ranges := []string{"1.0.0", "^1.0.0", "~1.2.0", "1.2.x", ">=1.0.0 <2.0.0", "1.0.0 - 1.4.0", "*", "^1.3.0", "1.x || 2.x", "~1.4.1"}
	var keys []string
	app := App{Name: "Load"}
	for d := 0; d < 100; d++ {
		key := fmt.Sprintf("load-deployment-key-%03d", d)
		keys = append(keys, key)
		app.Deployments = append(app.Deployments, Deployment{Name: fmt.Sprintf("dep-%03d", d), Key: key})
		for i := 1; i <= 10; i++ {
			r := Release{
				Label: fmt.Sprintf("v%d", i), AppVersion: ranges[(d+i)%len(ranges)], Description: "release notes",
				Mandatory: i%4 == 0, Disabled: i == 7 && d%3 == 0, PackageHash: sha(fmt.Sprintf("%d/%d", d, i)),
				Size: 123456, BlobKey: sha(fmt.Sprintf("blob %d/%d", d, i)), Method: MethodUpload,
			}
			if err := store.AppendRelease(ctx, key, r); err != nil {
				tb.Fatal(err)
			}
		}
		if d%2 == 0 { // half the deployments have a rollout in progress on v10
			h, _ := store.Releases(ctx, key)
			up := h[9]
			up.Rollout = 30
			if err := store.UpdateRelease(ctx, key, h[9], up); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := store.SaveApp(ctx, app); err != nil {
		tb.Fatal(err)
	}
	svc, err := New(ctx, Config{Store: store, Blobs: DirBlobs{Dir: tb.TempDir()}, PublicURL: "https://ota.example.com"})
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	versions := []string{"1.0.0", "1.2.3", "1.4.1", "1.3", "2.0.0", "0.9.0"}
	queries := make([]string, 10000)
	for i := range queries {
		q := url.Values{}
		q.Set("deployment_key", keys[rng.IntN(len(keys))])
		q.Set("app_version", versions[rng.IntN(len(versions))])
		if l := rng.IntN(11); l > 0 {
			q.Set("label", fmt.Sprintf("v%d", l))
			q.Set("package_hash", sha(fmt.Sprintf("x%d", l)))
		}
		q.Set("client_unique_id", fmt.Sprintf("%08X-1B2C-4D5E-8F90-%012X", rng.Uint32(), rng.Uint64()&0xffffffffffff))
		queries[i] = q.Encode()
	}
	return svc, queries
}

func BenchmarkUpdateCheckResolve(b *testing.B) {
	svc, queries := loadFixture(b)
	reqs := make([]UpdateRequest, len(queries))
	for i, q := range queries {
		v, _ := url.ParseQuery(q)
		reqs[i] = ParseUpdateQuery(v)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := svc.CheckUpdate(reqs[i%len(reqs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkUpdateCheckHandler(b *testing.B) {
	svc, queries := loadFixture(b)
	h := svc.AcquisitionHandler()
	local := &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 8080}
	for _, bc := range []struct {
		name      string
		publicURL string
	}{{"public_url", "https://ota.example.com"}, {"local_address", ""}} {
		b.Run(bc.name, func(b *testing.B) {
			svc.cfg.PublicURL = bc.publicURL
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				req := httptest.NewRequest("GET", PathUpdateCheckV01, nil)
				req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, local))
				for pb.Next() {
					req.URL.RawQuery = queries[i%len(queries)]
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
					i++
				}
			})
		})
	}
}

type loadResult struct {
	rps      float64
	p50, p99 time.Duration
	n        int
	lat      []time.Duration // sorted
	elapsed  time.Duration
}

func combine(rs []loadResult) loadResult {
	var all []time.Duration
	var elapsed time.Duration
	for _, r := range rs {
		all = append(all, r.lat...)
		elapsed += r.elapsed
	}
	slices.Sort(all)
	return loadResult{rps: float64(len(all)) / elapsed.Seconds(), n: len(all), p50: all[len(all)/2], p99: all[len(all)*99/100], lat: all, elapsed: elapsed}
}

// runLoad drives url+queries with `clients` keep-alive clients for d.
func runLoad(tb testing.TB, base string, queries []string, clients int, d time.Duration) loadResult {
	tb.Helper()
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var stop atomic.Bool
	var wg sync.WaitGroup
	lat := make([][]time.Duration, clients)
	var failures atomic.Int64
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			i := c * 7919
			for !stop.Load() {
				t0 := time.Now()
				resp, err := client.Get(base + "?" + queries[i%len(queries)])
				if err != nil {
					failures.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
				}
				lat[c] = append(lat[c], time.Since(t0))
				i++
			}
		}(c)
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	if f := failures.Load(); f > 0 {
		tb.Fatalf("%d failed requests against %s", f, base)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	return loadResult{
		rps: float64(len(all)) / elapsed.Seconds(), n: len(all),
		p50: all[len(all)/2], p99: all[len(all)*99/100], lat: all, elapsed: elapsed,
	}
}

// BenchmarkUpdateCheckLoad measures update checks per second and latency over
// loopback with 64 concurrent keep-alive clients, against 1,000 releases in
// 100 deployments, beside a bare net/http handler returning a fixed JSON body
// measured the same way in the same run (four alternating phases each). Run it with -benchtime 1x; set
// CODEPUSH_LOAD_SECONDS to change the duration of each phase (default 3).
func BenchmarkUpdateCheckLoad(b *testing.B) {
	svc, queries := loadFixture(b)
	mux := http.NewServeMux()
	svc.RegisterAcquisition(mux)
	cp := httptest.NewServer(mux)
	defer cp.Close()
	fixed := []byte(`{"update_info":{"download_url":"","description":"","is_available":false,"is_mandatory":false,"app_version":"","package_hash":"","label":"","package_size":0,"update_app_version":false,"should_run_binary_version":false,"target_binary_range":""}}`)
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(fixed)
	}))
	defer bare.Close()

	d := 3 * time.Second
	if s := os.Getenv("CODEPUSH_LOAD_SECONDS"); s != "" {
		if n, err := time.ParseDuration(s + "s"); err == nil {
			d = n
		}
	}
	const clients = 64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runLoad(b, bare.URL+PathUpdateCheckV01, queries, clients, time.Second) // warm-up
		runLoad(b, cp.URL+PathUpdateCheckV01, queries, clients, time.Second)
		// Alternate short phases so that a change in background load on a
		// shared machine hits both handlers alike.
		var brs, crs []loadResult
		for round := 0; round < 4; round++ {
			brs = append(brs, runLoad(b, bare.URL+PathUpdateCheckV01, queries, clients, d/4))
			crs = append(crs, runLoad(b, cp.URL+PathUpdateCheckV01, queries, clients, d/4))
		}
		br, cr := combine(brs), combine(crs)
		ratio := cr.rps / br.rps
		b.Logf("bare handler:  %8.0f req/s  p50 %v  p99 %v  (%d requests)", br.rps, br.p50, br.p99, br.n)
		b.Logf("update check:  %8.0f req/s  p50 %v  p99 %v  (%d requests)", cr.rps, cr.p50, cr.p99, cr.n)
		b.Logf("ratio: %.1f %% of the bare handler's throughput", 100*ratio)
		b.ReportMetric(cr.rps, "checks/s")
		b.ReportMetric(br.rps, "bare-req/s")
		b.ReportMetric(float64(cr.p50.Microseconds()), "p50-µs")
		b.ReportMetric(float64(cr.p99.Microseconds()), "p99-µs")
		b.ReportMetric(100*ratio, "%-of-bare")
		if ratio < 0.60 {
			b.Errorf("update checks reach %.1f %% of the bare handler's throughput; the goal is at least 60 %%", 100*ratio)
		}
	}
}
