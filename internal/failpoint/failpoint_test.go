package failpoint

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHit(t *testing.T) {
	Hit(context.Background(), "off") // no URL: nothing happens

	got := make(chan map[string]any, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		got <- m
		<-release
	}))
	defer srv.Close()
	url = srv.URL
	defer func() { url = "" }()

	done := make(chan struct{})
	go func() { Hit(context.Background(), "ota.promoted"); close(done) }()
	m := <-got
	require.Equal(t, "ota.promoted", m["name"])
	require.Equal(t, float64(os.Getpid()), m["pid"])
	select {
	case <-done:
		t.Fatal("Hit returned before the harness answered")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-done

	url = "http://127.0.0.1:1/unreachable"
	Hit(context.Background(), "x") // an unreachable harness is ignored
}
