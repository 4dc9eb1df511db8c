package service

import "context"

// setupOTA wires the OTA lane: the CodePush server on releasepilot's store, the native gate and the OTA executor.
func (s *Service) setupOTA(ctx context.Context) error {
	return nil
}
