#!/usr/bin/env bash
# FER Cam installer for Linux: the v4l2loopback driver as the camera "FER Cam", the app in a per-user
# virtual environment (or pipx), and its menu/autostart entries. Everything it writes is listed in a
# manifest so that uninstall.sh removes exactly that.
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
PROJECT_DIR=$(cd -- "$HERE/../.." && pwd)
# shellcheck source=SCRIPTDIR/common.sh
source "$HERE/common.sh"

NO_DRIVER=0
NO_APP=0
NO_TRAY_MENU=0
AUTOSTART=0
METHOD=auto
VIDEO_NR=""
PYTHON=${PYTHON:-python3}
RECORDS=()

usage() {
	cat <<EOF
Usage: bash install.sh [options]

Installs the v4l2loopback driver (needs sudo), loads it as the virtual camera "$CAMERA_LABEL" and makes
that persistent, then installs FER Cam for you with a menu entry.

  --no-driver     skip the driver (package, module loading, /etc files)
  --no-app        skip installing the FER Cam Python package
  --autostart     also start FER Cam at login (~/.config/autostart/fercam.desktop)
  --no-tray-menu  skip PyGObject and AppIndicator (the tray then has no menu; a click opens the window)
  --venv          install into ~/.local/share/fercam/venv even when pipx is available
  --pipx          install with pipx
  --video-nr N    use /dev/videoN for the camera (default: the first free number from 10)
  --python PATH   the Python (>= 3.10) for the virtual environment (default: python3)
  --dry-run       print every command and every file (with its content) without doing anything
  --prefix DIR    write all files under DIR (a staging root) and skip the package manager, modprobe and pip;
                  the driver check reads /sys, /lib/modules and /etc under DIR
  -h, --help      show this help
EOF
}

parse_args() {
	while (($#)); do
		case $1 in
		--no-driver) NO_DRIVER=1 ;;
		--no-app) NO_APP=1 ;;
		--autostart) AUTOSTART=1 ;;
		--no-tray-menu) NO_TRAY_MENU=1 ;;
		--venv) METHOD=venv ;;
		--pipx) METHOD=pipx ;;
		--video-nr) VIDEO_NR=${2:?--video-nr needs a number} && shift ;;
		--python) PYTHON=${2:?--python needs a path} && shift ;;
		--dry-run) DRY_RUN=1 ;;
		--prefix) PREFIX=$(realpath -m -- "${2:?--prefix needs a folder}") && shift ;;
		-h | --help) usage && exit 0 ;;
		*) usage >&2 && die "unknown option: $1" ;;
		esac
		shift
	done
	[[ -z $VIDEO_NR || $VIDEO_NR =~ ^[0-9]+$ ]] || die "--video-nr needs a number, not '$VIDEO_NR'"
}

# record KIND VALUE: one manifest line (file, dir, pipx, module, package) for uninstall.sh.
record() { RECORDS+=("$1 $2"); }
# record_run KIND VALUE: the same for the result of a command, which --prefix skips.
record_run() { [[ -n $PREFIX ]] || record "$@"; }

package_manager() {
	local pm
	for pm in apt-get dnf pacman; do
		command -v "$pm" >/dev/null && printf '%s' "$pm" && return 0
	done
	return 1
}

package_installed() {
	case $1 in
	apt-get) dpkg -s "$2" >/dev/null 2>&1 ;;
	dnf) rpm -q "$2" >/dev/null 2>&1 ;;
	pacman) pacman -Q "$2" >/dev/null 2>&1 ;;
	esac
}

install_packages() {
	local pm pkg fresh=()
	if ! pm=$(package_manager); then
		warn "no apt-get, dnf or pacman: install v4l2loopback with your package manager (see installer/README.md)"
		return 0
	fi
	local -a pkgs=(v4l2loopback-dkms v4l2loopback-utils)
	case $pm in
	dnf)
		say "Fedora: v4l2loopback comes from RPM Fusion (free); enable it first: https://rpmfusion.org/Configuration"
		pkgs=(akmod-v4l2loopback v4l2loopback)
		;;
	pacman) pkgs=(v4l2loopback-dkms) && say "Arch: the module is built by DKMS and needs the linux-headers package" ;;
	esac
	for pkg in "${pkgs[@]}"; do
		package_installed "$pm" "$pkg" || fresh+=("$pkg")
	done
	case $pm in
	apt-get) run_cmd root apt-get update && run_cmd root apt-get install -y "${pkgs[@]}" ;;
	dnf) run_cmd root dnf install -y "${pkgs[@]}" && run_cmd root akmods --force ;;
	pacman) run_cmd root pacman -S --needed --noconfirm "${pkgs[@]}" ;;
	esac || die "the package manager could not install ${pkgs[*]}"
	for pkg in "${fresh[@]}"; do record_run package "$pm:$pkg"; done
}

free_video_nr() {
	local n
	for ((n = 10; n < 64; n++)); do
		[[ -e $PREFIX/dev/video$n ]] || break
	done
	printf '%s' "$n"
}

# explain_driver [STATUS OUTPUT]: why there is no "FER Cam" camera and the fix that fits, from the table that
# `fercam doctor` uses too (fercam/linux_driver.py). STATUS and OUTPUT are those of the modprobe just tried;
# without them the module asks modprobe for a dry run, which loads nothing.
explain_driver() {
	local -a args=(--root "${PREFIX:-/}" --video-nr "$VIDEO_NR")
	(($#)) && args+=(--modprobe-status "$1" --modprobe-output "$2")
	PYTHONPATH=$PROJECT_DIR PYTHONDONTWRITEBYTECODE=1 "$PYTHON" -m fercam.linux_driver "${args[@]}" >&2 && return 0
	warn "$PYTHON could not run fercam/linux_driver.py to say why; modprobe said: ${2:-nothing}"
	warn "see \"When the camera does not appear\" in installer/README.md"
}

# Loads v4l2loopback with the "FER Cam" device. Another program's v4l2loopback is never unloaded (that would
# take its camera away): the diagnosis says how to add ours beside it.
load_module() {
	local output status=0
	local -a load=(modprobe v4l2loopback devices=1 "video_nr=$VIDEO_NR" "card_label=$CAMERA_LABEL" exclusive_caps=1)
	if module_loaded && fercam_device >/dev/null; then
		say "v4l2loopback is loaded already with \"$CAMERA_LABEL\" at $(fercam_device)"
		return 0
	fi
	if module_loaded; then
		explain_driver
	elif ! acting; then
		run_cmd root "${load[@]}"
		say "What a real run would meet (modprobe's dry run):" >&2
		explain_driver
	else
		output=$(run_cmd root "${load[@]}" 2>&1) || status=$?
		printf '%s\n' "$output"
		if ((status == 0)); then
			record_run module v4l2loopback
			return 0
		fi
		explain_driver "$status" "$(grep -v '^+ ' <<<"$output")"
	fi
}

# The files under /etc/modprobe.d, other than ours, that set v4l2loopback's options (OBS, DroidCam, ...).
other_options() {
	local file
	for file in "$PREFIX"/etc/modprobe.d/*.conf; do
		[[ -f $file && $file != "$PREFIX$MODPROBE_CONF" ]] || continue
		grep -Eq '^[[:space:]]*options[[:space:]]+v4l2loopback([[:space:]]|$)' "$file" && printf '%s\n' "${file#"$PREFIX"}"
	done
	return 0
}

install_driver() {
	local others
	[[ -n $VIDEO_NR ]] || VIDEO_NR=$(free_video_nr)
	install_packages
	load_module
	others=$(other_options)
	if [[ -n $others ]]; then
		# modprobe merges every file's options, so ours would change that program's cameras at the next boot.
		warn "$(tr '\n' ' ' <<<"$others")sets v4l2loopback's options already: left as it is, and no options file written"
		warn "after a reboot, add the \"$CAMERA_LABEL\" camera beside that program's with:" \
			"sudo v4l2loopback-ctl add -n \"$CAMERA_LABEL\" -x 1 /dev/video$VIDEO_NR (see installer/README.md)"
	else
		write_file root "$MODPROBE_CONF" "# Written by the FER Cam installer (removed by installer/linux/uninstall.sh).
options v4l2loopback devices=1 video_nr=$VIDEO_NR card_label=\"$CAMERA_LABEL\" exclusive_caps=1"
		record file "$MODPROBE_CONF"
	fi
	write_file root "$LOAD_CONF" "# Written by the FER Cam installer: load the \"$CAMERA_LABEL\" virtual camera driver at boot.
v4l2loopback"
	record file "$LOAD_CONF"
}

check_python() {
	"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null && return 0
	acting && die "$PYTHON is missing or older than 3.10: install Python 3.10+ or pass --python PATH"
	warn "$PYTHON is missing or older than 3.10 (a real install would stop here)"
}

# Installs the package and sets FERCAM_BIN to the fercam command it makes.
install_app() {
	[[ -f $PROJECT_DIR/pyproject.toml ]] || die "no pyproject.toml in $PROJECT_DIR: run the installer from a FER Cam checkout"
	if [[ $METHOD == pipx || ($METHOD == auto && -n $(command -v pipx)) ]]; then
		run_cmd user pipx install --force "$PROJECT_DIR" || die "pipx could not install FER Cam"
		record_run pipx fercam
		FERCAM_BIN=${PIPX_BIN_DIR:-$TARGET_HOME/.local/bin}/fercam
		return 0
	fi
	check_python
	run_cmd user "$PYTHON" -m venv "$VENV" || die "could not create $VENV (Debian/Ubuntu: sudo apt-get install python3-venv)"
	record_run dir "$VENV"
	run_cmd user "$VENV/bin/python" -m pip install --upgrade "$PROJECT_DIR" || die "pip could not install FER Cam"
}

# The tray's menu needs PyGObject and AppIndicator, which pip builds only with a compiler and headers:
# take the distribution's packages and link their gi module into the app's environment instead.
install_tray_packages() {
	local pm
	pm=$(package_manager) || return 0
	case $pm in
	apt-get) run_cmd root apt-get install -y python3-gi gir1.2-ayatanaappindicator3-0.1 ;;
	dnf) run_cmd root dnf install -y python3-gobject libappindicator-gtk3 ;;
	pacman) run_cmd root pacman -S --needed --noconfirm python-gobject libappindicator-gtk3 ;;
	esac || warn "could not install PyGObject and AppIndicator: the tray will have no menu (a click opens the window)"
}

# link_gi VENV: makes the system's gi importable in VENV when both are the same Python version.
link_gi() {
	local venv=$1 sys_gi want have site
	if ! acting; then
		say "would link the system's PyGObject (gi) into $venv"
		return 0
	fi
	sys_gi=$(/usr/bin/python3 -c 'import gi, os; print(os.path.dirname(gi.__file__))' 2>/dev/null) ||
		{ warn "no system PyGObject: the tray will have no menu (a click opens the FER Cam window)" && return 0; }
	want=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	have=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	if [[ $want != "$have" ]]; then
		warn "FER Cam runs on Python $have, the system's PyGObject is for $want: the tray will have no menu" \
			"(a click opens the FER Cam window); use --python /usr/bin/python3 for a full menu"
		return 0
	fi
	site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
	run_cmd user ln -sfn "$sys_gi" "$site/gi"
	record file "$site/gi"
}

install_tray_menu() {
	local venv=$VENV
	[[ $FERCAM_BIN == "$VENV/bin/fercam" ]] || venv=$(pipx environment --value PIPX_LOCAL_VENVS 2>/dev/null)/fercam
	install_tray_packages
	link_gi "$venv"
}

desktop_entry() {
	local bin=$1
	[[ $bin == *" "* ]] && bin="\"$bin\""
	printf '%s\n' "[Desktop Entry]" "Type=Application" "Name=FER Cam" \
		"Comment=Facial-expression overlay published as the virtual camera \"$CAMERA_LABEL\"" \
		"Exec=$bin" "Icon=camera-web" "Terminal=false" "Categories=AudioVideo;Video;"
}

write_entries() {
	local bin=$1
	write_file user "$DESKTOP_FILE" "$(desktop_entry "$bin")"
	record file "$DESKTOP_FILE"
	if ((AUTOSTART)); then
		write_file user "$AUTOSTART_FILE" "$(desktop_entry "$bin")
X-GNOME-Autostart-enabled=true"
		record file "$AUTOSTART_FILE"
	fi
}

# The manifest keeps earlier installs' lines, so a second run (e.g. --autostart later) still uninstalls all.
write_manifest() {
	local old=""
	[[ -f $PREFIX$MANIFEST ]] && old=$(<"$PREFIX$MANIFEST")
	record file "$MANIFEST"
	write_file user "$MANIFEST" "$(printf '%s\n' "$old" "${RECORDS[@]}" | grep -v '^$' | awk '!seen[$0]++')"
}

main() {
	parse_args "$@"
	setup_paths
	FERCAM_BIN=$VENV/bin/fercam
	((DRY_RUN)) && say "Dry run: nothing is changed."
	((NO_DRIVER)) || install_driver
	((NO_APP)) || install_app
	((NO_APP || NO_TRAY_MENU)) || install_tray_menu
	write_entries "$FERCAM_BIN"
	write_manifest
	say "Done. Check the setup with: $FERCAM_BIN doctor   (uninstall: bash $HERE/uninstall.sh)"
}

# Sourced (by the tests) it only defines the functions.
[[ ${BASH_SOURCE[0]} != "$0" ]] || main "$@"
