package browser

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// ErrNotInstalled is wrapped by the error of [Find], and of every call that
// needs the browser, when no Chromium binary can be found.
var ErrNotInstalled = errors.New("chromium is not installed")

// installHint tells a person how to get the browser, in the words of the
// other install scripts.
const installHint = "install it with `sudo scripts/install-chromium.sh` " +
	"(or `apt-get update && apt-get install -y --no-install-recommends chromium`)"

// binaryNames are the names Chromium is installed under, in the order Find
// tries them: Debian's first, then Ubuntu's and Google's builds.
var binaryNames = []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}

// Find returns the path of the Chromium binary: $CHROMIUM if set (a path or
// a name on PATH), else the first of chromium, chromium-browser,
// google-chrome-stable and google-chrome found on PATH. Its error wraps
// [ErrNotInstalled] and says how to install the browser.
func Find() (string, error) {
	if name := os.Getenv("CHROMIUM"); name != "" {
		path, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("browser: CHROMIUM=%q: %w (%v); %s", name, ErrNotInstalled, err, installHint)
		}
		return path, nil
	}
	for _, name := range binaryNames {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("browser: none of %s on PATH: %w; %s",
		strings.Join(binaryNames, ", "), ErrNotInstalled, installHint)
}
