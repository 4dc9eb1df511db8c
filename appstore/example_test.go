package appstore_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
)

// A TestFlight distribution against the fake. Against Apple, load the key
// with appstore.ParsePrivateKey(os.ReadFile("AuthKey_<KEYID>.p8")) and leave
// BaseURL empty.
func Example() {
	fake := appstoretest.New(appstoretest.Options{ProcessingPolls: 3})
	key, _, err := fake.NewKey("2X9R4HXF34", "57246542-96fe-1a63-e053-0824d011072a")
	if err != nil {
		panic(err)
	}
	appID := fake.AddApp(appstoretest.App{BundleID: "com.example.app", Name: "Example"})
	fake.AddBuild(appstoretest.Build{AppID: appID, Version: "1.2.3", BuildNumber: "45"})
	team := fake.AddBetaGroup(appID, "Team", true)
	srv := httptest.NewServer(fake)
	defer srv.Close()

	client := &appstore.Client{
		BaseURL: srv.URL,
		Tokens:  appstore.NewTokenSource(key),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	app, err := client.FindApp(ctx, "com.example.app")
	if err != nil {
		fmt.Println(err)
		return
	}
	var build appstore.Build
	for {
		builds, err := client.FindBuilds(ctx, appstore.BuildQuery{AppID: app.ID, Version: "1.2.3", BuildNumber: "45"})
		if err != nil {
			fmt.Println(err)
			return
		}
		if len(builds) > 0 && builds[0].ProcessingState.Done() {
			build = builds[0]
			break
		}
		// A lane job would snooze here (river.JobSnooze) instead of looping.
	}
	fmt.Println("build", build.Version, build.ProcessingState)

	if _, err := client.SetUsesNonExemptEncryption(ctx, build.ID, false); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := client.SetWhatToTest(ctx, build.ID, "en-US", "New onboarding"); err != nil {
		fmt.Println(err)
		return
	}
	added, err := client.AddBuildToGroups(ctx, build.ID, team)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("added to", len(added), "group(s)")
	fmt.Println("calls:", client.Calls(), "remaining this hour:", client.RateLimit().Remaining)
	// Output:
	// build 45 VALID
	// added to 1 group(s)
	// calls: 10 remaining this hour: 3590
}

// Halting an iOS rollout pauses Apple's phased release; it never removes
// the app from sale.
func ExampleClient_PausePhasedRelease() {
	fake := appstoretest.New(appstoretest.Options{})
	key, _, _ := fake.NewKey("KEY1", "issuer")
	appID := fake.AddApp(appstoretest.App{BundleID: "com.example.app"})
	fake.AddAppStoreVersion(appID, appstore.PlatformIOS, "1.0", appstore.VersionReadyForDistribution)
	versionID := fake.AddAppStoreVersion(appID, appstore.PlatformIOS, "1.1", appstore.VersionPendingDeveloperRelease)
	srv := httptest.NewServer(fake)
	defer srv.Close()
	client := &appstore.Client{BaseURL: srv.URL, Tokens: appstore.NewTokenSource(key)}
	ctx := context.Background()

	if _, err := client.CreatePhasedRelease(ctx, versionID, appstore.PhasedInactive); err != nil {
		fmt.Println(err)
		return
	}
	_ = fake.ReleaseVersion(versionID) // App Store Connect starts day 1
	pr, err := client.PausePhasedRelease(ctx, versionID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(pr.State, "on day", pr.CurrentDayNumber)
	// Output: PAUSED on day 1
}
