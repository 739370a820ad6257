# Sourced by the install scripts: apt_install installs Debian packages when
# run as root; run by anyone else it says what is missing and the command
# that installs it, and exits 1.
#
# Usage: apt_install "<what is missing>" <package>...
apt_install() {
	local missing=$1
	shift
	if [[ "$(id -u)" -ne 0 ]]; then
		{
			echo "$(basename "$0"): missing:$missing"
			echo "Run as root:"
			echo "  sudo $0"
			echo "or:"
			echo "  sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends $*'"
		} >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends "$@"
}
