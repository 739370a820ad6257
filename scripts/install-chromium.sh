#!/usr/bin/env bash
# Installs Debian's Chromium (and a font, so that screenshots show text)
# needed by the browser tests in integration/browser. Does nothing when a
# chromium that runs and a font are already present. CHROMIUM names a
# browser binary to use instead of the first of chromium, chromium-browser,
# google-chrome-stable and google-chrome on PATH, as integration/browser's
# Find does.
#
# Usage: sudo scripts/install-chromium.sh
set -euo pipefail
# shellcheck source=apt.sh
source "$(dirname "$0")/apt.sh"

find_chromium() {
	if [[ -n "${CHROMIUM:-}" ]]; then
		command -v "$CHROMIUM"
		return
	fi
	local c
	for c in chromium chromium-browser google-chrome-stable google-chrome; do
		if command -v "$c" 2>/dev/null; then
			return 0
		fi
	done
	return 1
}

have_chromium() {
	local bin
	bin=$(find_chromium) || return 1
	timeout 30 "$bin" --version >/dev/null 2>&1
}

# Without any font, headless Chromium draws no glyphs: text vanishes from
# screenshots while --dump-dom still shows it.
have_font() {
	[[ -n "$(find /usr/share/fonts /usr/local/share/fonts \( -name '*.ttf' -o -name '*.otf' \) -print -quit 2>/dev/null)" ]]
}

if have_chromium && have_font; then
	exit 0
fi

if [[ -n "${CHROMIUM:-}" ]] && ! have_chromium; then
	echo "install-chromium.sh: CHROMIUM=$CHROMIUM does not run; unset it to use Debian's chromium" >&2
	exit 1
fi

pkgs=()
if ! have_chromium; then
	pkgs+=(chromium)
fi
if ! have_font; then
	pkgs+=(fonts-dejavu-core)
fi

apt_install "$(have_chromium || echo " chromium")$(have_font || echo " a font")" "${pkgs[@]}"

if ! have_chromium || ! have_font; then
	echo "install-chromium.sh: installed ${pkgs[*]} but chromium or a font is still missing" >&2
	exit 1
fi
