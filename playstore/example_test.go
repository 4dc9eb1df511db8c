package playstore_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/swapjoy/releasepilot/playstore"
	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

// A staged rollout against the fake: the service account's token_uri points at
// the fake, which also serves androidpublisher and the Reporting API.
func Example() {
	fake := playstoretest.New(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	srv := httptest.NewServer(fake)
	defer srv.Close()
	fake.AddApp("com.example.app")
	fake.ConsoleUpdate("com.example.app", "production", playstoretest.Release{VersionCodes: []int64{41}, Status: "completed"})
	key, _ := fake.ServiceAccountJSON(srv.URL, "ci@example.iam.gserviceaccount.com")

	ctx := context.Background()
	c, err := playstore.New(ctx, playstore.Config{
		CredentialsJSON:   key,
		Endpoint:          srv.URL + "/",
		ReportingEndpoint: srv.URL + "/",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	aab := playstoretest.FakeBundle(42, 1024)
	if _, err := c.UploadBundle(ctx, "com.example.app", playstore.Bundle{VersionCode: 42, Content: bytes.NewReader(aab), Size: int64(len(aab))}); err != nil {
		fmt.Println(err)
		return
	}
	res, err := c.PutRelease(ctx, "com.example.app", playstore.TrackProduction, playstore.Release{
		Name: "1.4.2", VersionCodes: []int64{42}, Status: playstore.StatusInProgress, UserFraction: 0.1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("start:", res.Calls, "calls")
	for _, f := range []float64{0.25, 0.5} {
		res, _ = c.SetFraction(ctx, "com.example.app", playstore.TrackProduction, 42, f)
		r, _ := res.Track.Release(42)
		fmt.Println(r.Status, r.UserFraction, res.Calls, "calls")
	}
	res, _ = c.Complete(ctx, "com.example.app", playstore.TrackProduction, 42)
	fmt.Println(len(res.Track.Releases), "release:", res.Track.Releases[0].Status, res.Track.Releases[0].VersionCodes)
	// Output:
	// start: 4 calls
	// inProgress 0.25 4 calls
	// inProgress 0.5 4 calls
	// 1 release: completed [42]
}
