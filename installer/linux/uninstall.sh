#!/usr/bin/env bash
# FER Cam uninstaller for Linux: removes exactly what install.sh recorded in its manifest (files, the virtual
# environment or pipx install), unloads the "FER Cam" camera it loaded, and keeps the driver packages unless
# --purge-driver asks to remove the ones the installer added.
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/common.sh
source "$HERE/common.sh"

PURGE_DRIVER=0
PACKAGES=()

usage() {
	cat <<EOF
Usage: bash uninstall.sh [options]

Removes what install.sh wrote (listed in ~/.local/share/fercam/installed-files.txt).

  --purge-driver  also remove the v4l2loopback packages that the installer installed
  --dry-run       print every command and every removal without doing anything
  --prefix DIR    uninstall from the staging root DIR used with install.sh --prefix
  -h, --help      show this help
EOF
}

parse_args() {
	while (($#)); do
		case $1 in
		--purge-driver) PURGE_DRIVER=1 ;;
		--dry-run) DRY_RUN=1 ;;
		--prefix) PREFIX=$(realpath -m -- "${2:?--prefix needs a folder}") && shift ;;
		-h | --help) usage && exit 0 ;;
		*) usage >&2 && die "unknown option: $1" ;;
		esac
		shift
	done
}

# Without a manifest (an install that never finished) fall back to the fixed FER Cam paths that exist.
manifest_lines() {
	if [[ -f $PREFIX$MANIFEST ]]; then
		grep -v '^[[:space:]]*$' "$PREFIX$MANIFEST" | tac
		return 0
	fi
	warn "no manifest at $PREFIX$MANIFEST: removing the standard FER Cam files that exist"
	local path
	for path in "$AUTOSTART_FILE" "$DESKTOP_FILE" "$LOAD_CONF" "$MODPROBE_CONF"; do
		[[ -e $PREFIX$path ]] && printf 'file %s\n' "$path"
	done
	[[ -d $PREFIX$VENV ]] && printf 'dir %s\n' "$VENV"
	return 0
}

unload_module() {
	if ! module_loaded || ! fercam_device >/dev/null; then
		say "v4l2loopback has no \"$CAMERA_LABEL\" device loaded: leaving the module alone"
		return 0
	fi
	run_cmd root modprobe -r v4l2loopback ||
		warn "v4l2loopback is in use (close apps using $(fercam_device)); it will not be loaded at the next boot"
}

# The virtual environment is deleted only where the installer puts it, whatever the manifest says.
remove_dir() {
	if [[ $1 != "$VENV" ]]; then
		warn "not removing $1: not the FER Cam virtual environment ($VENV)"
		return 0
	fi
	remove_path user "$1" dir
}

remove_packages() {
	((${#PACKAGES[@]})) || return 0
	local pm=${PACKAGES[0]%%:*}
	local -a names=("${PACKAGES[@]#*:}")
	if ((!PURGE_DRIVER)); then
		say "keeping the driver packages ${names[*]} (remove them with --purge-driver)"
		return 0
	fi
	case $pm in
	apt-get) run_cmd root apt-get remove -y "${names[@]}" ;;
	dnf) run_cmd root dnf remove -y "${names[@]}" ;;
	pacman) run_cmd root pacman -R --noconfirm "${names[@]}" ;;
	*) warn "unknown package manager '$pm': remove ${names[*]} yourself" ;;
	esac
}

remove_entry() {
	local kind=$1 value=$2
	case $kind in
	file) remove_path "$(owner_of "$value")" "$value" ;;
	dir) remove_dir "$value" ;;
	pipx) run_cmd user pipx uninstall "$value" || warn "pipx could not uninstall $value" ;;
	module) unload_module ;;
	package) PACKAGES+=("$value") ;;
	*) warn "unknown manifest line: $kind $value" ;;
	esac
}

main() {
	parse_args "$@"
	setup_paths
	((DRY_RUN)) && say "Dry run: nothing is changed."
	local lines kind value
	lines=$(manifest_lines)
	while read -r kind value; do
		[[ -n $kind ]] && remove_entry "$kind" "$value"
	done <<<"$lines"
	remove_packages
	if ((!DRY_RUN)) && [[ -d $PREFIX$APP_DIR ]]; then
		rmdir -- "$PREFIX$APP_DIR" 2>/dev/null || say "kept $PREFIX$APP_DIR (it holds files FER Cam did not install)"
	fi
	say "FER Cam is uninstalled."
}

main "$@"
