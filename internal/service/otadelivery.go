package service

import (
	"context"
	"fmt"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/codepush/expoupdates"
	"github.com/swapjoy/releasepilot/codepush/s3blobs"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/hotfix"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/release"
)

// s3Storage builds the S3-compatible package storage and reads the bucket
// once, so that a wrong endpoint, bucket or credentials stop the start.
func s3Storage(ctx context.Context, c config.S3) (*s3blobs.Blobs, error) {
	b, err := s3blobs.New(s3blobs.Config{
		Endpoint: c.Endpoint, Region: c.Region, Bucket: c.Bucket, Prefix: c.Prefix,
		AccessKeyID: c.AccessKeyID.Value(), SecretAccessKey: c.SecretAccessKey.Value(),
		PublicBaseURL: c.PublicBaseURL, PresignTTL: c.PresignTTL.D(),
	})
	if err != nil {
		return nil, fmt.Errorf("codepush.s3.%w", err)
	}
	if err := b.Check(ctx); err != nil {
		return nil, fmt.Errorf("codepush.s3: %w", err)
	}
	return b, nil
}

// PathExpoRelease is where `releasepilot ota release --expo-dist` uploads.
const PathExpoRelease = "/v1/expo/release"

// setupExpo serves the apps whose OTA protocol is expo over the Expo Updates
// protocol, from the same CodePush apps (<ota.app_name>-ios and -android):
// GET /expo/manifest/<app> and the assets. Devices need no token. Exports
// released by hand go through hf, as CodePush releases by hand do: the
// commit fingerprinted and gated, a staged start on Production, an OTA lane,
// the caller in the audit log.
func (s *Service) setupExpo(cp *codepush.Service, hf *hotfix.Releaser) error {
	apps := map[string]expoupdates.App{}
	for i, a := range s.Config.Apps {
		if !a.OTA.Enabled || a.OTA.Protocol != "expo" {
			continue
		}
		ea := expoupdates.App{CodePushApps: map[string]string{}}
		for _, p := range release.Platforms {
			ea.CodePushApps[string(p)] = gate.CodePushAppName(a.OTA.AppName, p)
		}
		if a.OTA.Expo.Certificate.IsSet() {
			sg, err := config.ParseExpoSigning(a.OTA.Expo)
			if err != nil {
				return fmt.Errorf("apps[%d].ota.expo.%w", i, err)
			}
			ea.Signer = &expoupdates.Signer{Key: sg.Key, KeyID: sg.KeyID}
		}
		apps[a.Name] = ea
	}
	if len(apps) == 0 {
		return nil
	}
	srv := expoupdates.NewServer(expoupdates.Config{CodePush: cp, Apps: apps, Logger: s.Log.With("component", "expo")})
	h := srv.Handler()
	s.addRoute(expoupdates.PathManifest, httpapi.RoleNone, h)
	s.addRoute("GET "+expoupdates.PathAssets+"{file}", httpapi.RoleNone, h)
	// `releasepilot ota release --expo-dist`: operators release an export.
	s.addRoute("POST "+PathExpoRelease, httpapi.RoleOperator, codePushActor(expoupdates.ReleaseHandler(hf, apps)))
	return nil
}
