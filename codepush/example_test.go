package codepush_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/swapjoy/releasepilot/codepush"
)

// A service mounts the device routes as they are and the management API
// behind its own authentication, which names the actor.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "codepush-example")
	defer os.RemoveAll(dir)
	svc, err := codepush.New(ctx, codepush.Config{
		Store:     &codepush.MemStore{},
		Blobs:     codepush.DirBlobs{Dir: dir},
		PublicURL: "https://ota.example.com",
		Gate: codepush.GateFunc(func(ctx context.Context, app, dep, targetRange, commit string) error {
			return nil // the native-code gate decides here
		}),
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	svc.RegisterAcquisition(mux)
	auth := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(codepush.WithActor(r.Context(), codepush.Actor{Name: "ci@example.com"})))
		})
	}
	mux.Handle("/v1/codepush/", http.StripPrefix("/v1/codepush", auth(svc.ManagementHandler())))

	app, _ := svc.CreateApp(ctx, "Swap-iOS", false)
	rel, _ := svc.Release(ctx, codepush.ReleaseInput{
		App: "Swap-iOS", Deployment: codepush.Production, AppVersion: "^1.4.0",
		Package: strings.NewReader("bundle"), Rollout: 25,
	})
	info, _ := svc.CheckUpdate(codepush.UpdateRequest{
		DeploymentKey: app.Deployments[1].Key, AppVersion: "1.4.2", ClientUniqueID: "D8A5C3E2-1B2C-4D5E-8F90-123456789ABC",
	})
	fmt.Println(rel.Label, rel.Rollout, info.IsAvailable)
	// Output: v1 25 false
}
