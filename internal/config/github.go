package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

func (g GitHub) validate() error {
	if g.App.Set() {
		if g.Token.IsSet() {
			return fmt.Errorf("github.token: set either github.token or github.app, not both")
		}
		if g.App.ID <= 0 {
			return fmt.Errorf("github.app.id: %d is not a GitHub App id (the number on the app's settings page)", g.App.ID)
		}
		if g.App.InstallationID < 0 {
			return fmt.Errorf("github.app.installation_id: %d is negative (0 looks the installation up per repository)", g.App.InstallationID)
		}
		if !g.App.PrivateKey.IsSet() {
			return fmt.Errorf("github.app.private_key: empty while github.app.id is set")
		}
		// Never quote the key: the error says what it should look like.
		if _, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(g.App.PrivateKey.Value())); err != nil {
			return fmt.Errorf("github.app.private_key: not an RSA private key in PEM (the .pem file GitHub generates starts with -----BEGIN RSA PRIVATE KEY-----)")
		}
	}
	if g.ReleaseURL != "" {
		u, err := url.Parse(strings.ReplaceAll(g.ReleaseURL, "{release_id}", "x"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("github.release_url: %q is not an http(s) URL", g.ReleaseURL)
		}
		if !strings.Contains(g.ReleaseURL, "{release_id}") {
			return fmt.Errorf("github.release_url: %q has no {release_id} to link each release", g.ReleaseURL)
		}
	}
	return nil
}

// validateDeployments checks what an app's github_deployments needs.
func (g GitHub) validateDeployments(p string, a App) error {
	if !a.GitHubDeployments {
		return nil
	}
	if !g.Token.IsSet() && !g.App.Set() {
		return fmt.Errorf("%s.github_deployments: true while neither github.token nor github.app is set (deployments need a token or app with deployments: write)", p)
	}
	if g.ReleaseURL == "" {
		return fmt.Errorf("github.release_url: empty while %s.github_deployments is true (each deployment status links to its release)", p)
	}
	return nil
}
