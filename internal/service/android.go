package service

import "context"

// setupAndroid wires the Android lane: Play client, lane jobs, the staged-rollout executor and the vitals gate.
func (s *Service) setupAndroid(ctx context.Context) error {
	return nil
}
