# shellcheck shell=bash disable=SC2034  # the layout variables are used by the scripts that source this file
# Shared by install.sh and uninstall.sh: the file layout, and the helpers that honour --dry-run and --prefix.
# Every path below is the real (un-prefixed) path; writes go to "$PREFIX$path", like DESTDIR in a package build.

DRY_RUN=0
PREFIX=""
CAMERA_LABEL="FER Cam"
MODPROBE_CONF=/etc/modprobe.d/fercam-v4l2loopback.conf
LOAD_CONF=/etc/modules-load.d/fercam-v4l2loopback.conf

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# Commands touch the real system only without --dry-run and --prefix.
acting() { ((!DRY_RUN)) && [[ -z $PREFIX ]]; }

# The user who gets the app: the one who ran sudo, else the caller. XDG variables only count for the caller.
setup_paths() {
	if [[ $EUID -eq 0 && -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
		TARGET_USER=$SUDO_USER
		TARGET_HOME=$(getent passwd "$SUDO_USER" | cut -d: -f6)
		DATA_HOME=$TARGET_HOME/.local/share
		CONFIG_HOME=$TARGET_HOME/.config
	else
		TARGET_USER=$(id -un)
		TARGET_HOME=$HOME
		DATA_HOME=${XDG_DATA_HOME:-$HOME/.local/share}
		CONFIG_HOME=${XDG_CONFIG_HOME:-$HOME/.config}
	fi
	APP_DIR=$DATA_HOME/fercam
	VENV=$APP_DIR/venv
	MANIFEST=$APP_DIR/installed-files.txt
	DESKTOP_FILE=$DATA_HOME/applications/fercam.desktop
	AUTOSTART_FILE=$CONFIG_HOME/autostart/fercam.desktop
}

# How a command is shown: plain words bare, key=value with spaces as key="value", anything else in quotes.
show_cmd() {
	local out="" arg
	for arg in "$@"; do
		if [[ $arg =~ ^[A-Za-z0-9_./:=+,@%-]+$ ]]; then
			out+=" $arg"
		elif [[ $arg =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
			out+=" ${BASH_REMATCH[1]}=\"${BASH_REMATCH[2]}\""
		else
			out+=" \"$arg\""
		fi
	done
	printf '%s' "${out# }"
}

# as_who WHO CMD...: run CMD as root (sudo unless already root) or as the target user (sudo -u under sudo).
as_who() {
	local who=$1
	shift
	if [[ -n $PREFIX ]]; then
		"$@"
	elif [[ $who == root && $EUID -ne 0 ]]; then
		sudo "$@"
	elif [[ $who == user && $EUID -eq 0 && $TARGET_USER != root ]]; then
		sudo -u "$TARGET_USER" -H "$@"
	else
		"$@"
	fi
}

# run_cmd WHO CMD...: print the command, then run it unless this is a dry run or a --prefix install.
run_cmd() {
	local who=$1
	shift
	local shown
	shown=$(show_cmd "$@")
	[[ $who == root && $EUID -ne 0 ]] && shown="sudo $shown"
	if ((DRY_RUN)); then
		say "would run: $shown"
	elif [[ -n $PREFIX ]]; then
		say "skipped (--prefix): $shown"
	else
		say "+ $shown"
		as_who "$who" "$@"
	fi
}

# write_file WHO PATH CONTENT: create PATH (under the prefix) with CONTENT and a final newline.
write_file() {
	local who=$1 target=$PREFIX$2 content=$3
	if ((DRY_RUN)); then
		say "would write $target:"
		printf '%s\n' "$content" | sed 's/^/    | /'
		return 0
	fi
	say "writing $target"
	as_who "$who" mkdir -p -- "$(dirname -- "$target")"
	printf '%s\n' "$content" | as_who "$who" tee -- "$target" >/dev/null
}

# remove_path WHO PATH [dir]: delete a file (or, with "dir", a whole folder) under the prefix, if it is there.
remove_path() {
	local who=$1 target=$PREFIX$2 kind=${3:-file}
	[[ -e $target || -L $target ]] || return 0
	if ((DRY_RUN)); then
		say "would remove $target"
	elif [[ $kind == dir ]]; then
		say "removing $target/"
		as_who "$who" rm -rf -- "$target"
	else
		say "removing $target"
		as_who "$who" rm -f -- "$target"
	fi
}

# System files belong to root, files in the home to its user.
owner_of() {
	case $1 in
	"$TARGET_HOME"/*) printf user ;;
	*) printf root ;;
	esac
}

# The loaded v4l2loopback device labelled "FER Cam", if any (/dev/videoN).
fercam_device() {
	local entry
	for entry in "$PREFIX"/sys/class/video4linux/video*; do
		[[ -f $entry/name && $(<"$entry/name") == "$CAMERA_LABEL" ]] && printf '/dev/%s' "${entry##*/}" && return 0
	done
	return 1
}

module_loaded() { [[ -d $PREFIX/sys/module/v4l2loopback ]]; }
