package image

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// checkManifest refuses, before anything else is fetched, a manifest
// whose declared sizes or layer count no image banger can run needs: a
// registry (or whoever answers for it) decides these numbers, and each
// one sizes a download or an allocation.
func checkManifest(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if n := len(m.Layers); n > maxLayers {
		return fmt.Errorf("the image has %d layers, more than %d (Docker itself runs at most 125): refused", n, maxLayers)
	}
	if s := m.Config.Size; s < 0 || s > maxConfigSize {
		return fmt.Errorf("the image config is declared as %d bytes, more than %d: refused", s, maxConfigSize)
	}
	var total int64
	for i, l := range m.Layers {
		if l.Size < 0 || l.Size > maxImageSize {
			return fmt.Errorf("layer %d is declared as %d bytes, more than an image may hold (%d): refused", i+1, l.Size, int64(maxImageSize))
		}
		if total += l.Size; total > maxImageSize {
			return fmt.Errorf("the layers are declared as more than %d bytes in all: refused", int64(maxImageSize))
		}
	}
	return nil
}
