package browser

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
)

// maxSide bounds a screenshot's width and height, in pixels.
const maxSide = 16384

// screenshotName is where Chromium writes a screenshot, in its directory.
const screenshotName = "screenshot.png"

// DumpDOM loads url in headless Chromium and returns the DOM after the
// load event, serialized as HTML: what the server sent as changed by any
// script that ran. ctx bounds the whole call, Chromium's start-up included.
func DumpDOM(ctx context.Context, url string) (string, error) {
	var dom string
	err := run(ctx, "dump-dom", url, []string{"--dump-dom"}, func(dir string) error {
		b, err := os.ReadFile(filepath.Join(dir, stdoutName))
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return fmt.Errorf("%w: chromium printed no DOM", ErrLoadFailed)
		}
		dom = string(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	return dom, nil
}

// Screenshot loads url in headless Chromium with a window of width by
// height CSS pixels, at one device pixel per CSS pixel and without
// scrollbars, and writes what the window shows after the load event to
// pngPath as a PNG of exactly that size. pngPath is written only when the
// page loaded. ctx bounds the whole call, Chromium's start-up included.
func Screenshot(ctx context.Context, url, pngPath string, width, height int) error {
	if width < 1 || height < 1 || width > maxSide || height > maxSide {
		return fmt.Errorf("browser: screenshot %s: size %dx%d: want 1 to %d pixels a side", url, width, height, maxSide)
	}
	if pngPath == "" {
		return fmt.Errorf("browser: screenshot %s: no path for the PNG", url)
	}
	extra := []string{
		"--screenshot=" + screenshotName, // relative to the run's directory
		fmt.Sprintf("--window-size=%d,%d", width, height),
		"--force-device-scale-factor=1",
		"--hide-scrollbars",
	}
	return run(ctx, "screenshot", url, extra, func(dir string) error {
		b, err := os.ReadFile(filepath.Join(dir, screenshotName))
		if os.IsNotExist(err) {
			return fmt.Errorf("%w: chromium wrote no screenshot", ErrLoadFailed)
		}
		if err != nil {
			return err
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("chromium's screenshot: %w", err)
		}
		if cfg.Width != width || cfg.Height != height {
			return fmt.Errorf("chromium's screenshot is %dx%d, want %dx%d", cfg.Width, cfg.Height, width, height)
		}
		if err := os.WriteFile(pngPath, b, 0o644); err != nil {
			return fmt.Errorf("write screenshot: %w", err)
		}
		return nil
	})
}
