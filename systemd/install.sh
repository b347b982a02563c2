#!/usr/bin/env bash
# Install (or remove) the gate daemon on Raspberry Pi OS Bookworm.
#
#   sudo ./systemd/install.sh              install or update; safe to run again
#   sudo ./systemd/install.sh --no-start   install and enable, but do not start
#   sudo ./systemd/install.sh --uninstall  remove the service and the program,
#                                          keep /etc/gate and /var/lib/gate
#
# Every step prints one line: "changed" when it did something, "ok" when it
# found things already in place. A second run on an installed Pi prints only
# "ok" lines and changes nothing.
#
# Testing without a Pi (tests/test_install.py):
#   GATE_ROOT=/tmp/root  prefixes every filesystem path this script touches and
#                        lifts the must-be-root check. The external commands
#                        (apt-get, dpkg-query, getent, useradd, usermod,
#                        systemctl, python3) must then be stubs found first on
#                        PATH; the script refuses to run real ones in this mode.
#   GATE_PYTHON=/path    the system Python that creates the venv
#                        (default /usr/bin/python3; "python3" on PATH under
#                        GATE_ROOT).
set -euo pipefail

PROG=install.sh
NAME=gate
UNIT=gate.service
APT_PACKAGES=(python3-venv python3-picamera2 python3-lgpio python3-gpiozero python3-numpy libzbar0)
DEVICE_GROUPS=(gpio video)

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }

usage() {
    sed -n '2,11s/^# \{0,1\}//p' "$0"
}

# ---------------------------------------------------------------- arguments
ACTION=install
START=1
for arg in "$@"; do
    case "$arg" in
        --uninstall) ACTION=uninstall ;;
        --no-start) START=0 ;;
        -h|--help) usage; exit 0 ;;
        *) printf '%s: unknown argument: %s\n' "$PROG" "$arg" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT="${GATE_ROOT:-}"
ROOT="${ROOT%/}"
if [[ -n "$ROOT" ]]; then
    [[ "$ROOT" == /* ]] || die "GATE_ROOT must be an absolute path, got '$ROOT'"
    [[ -d "$ROOT" ]] || die "GATE_ROOT=$ROOT is not a directory"
    # Test mode: never let a real package manager, user tool or systemctl
    # loose on the machine running the tests.
    for cmd in apt-get dpkg-query getent useradd usermod systemctl; do
        found="$(command -v "$cmd" || true)"
        case "$found" in
            ""|/usr/*|/bin/*|/sbin/*)
                die "GATE_ROOT is set but '$cmd' resolves to '${found:-nothing}'; put stub commands first on PATH" ;;
        esac
    done
    SYS_PYTHON="${GATE_PYTHON:-python3}"
    case "$(command -v "$SYS_PYTHON" || true)" in
        ""|/usr/*|/bin/*) die "GATE_ROOT is set but GATE_PYTHON ('$SYS_PYTHON') is not a stub" ;;
    esac
else
    [[ "$(id -u)" -eq 0 ]] || die "must run as root: sudo $0 $*"
    SYS_PYTHON="${GATE_PYTHON:-/usr/bin/python3}"
fi

# Files this script creates must be readable by the gate user whatever root's
# umask is (the venv especially).
umask 022
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -f "$SRC/pyproject.toml" && -f "$SRC/systemd/$UNIT" ]] \
    || die "run me from a checkout of the gate repo (no pyproject.toml or systemd/$UNIT under $SRC)"

OPT_DIR="$ROOT/opt/gate"
VENV="$OPT_DIR/venv"
STAMP="$OPT_DIR/installed-from.sha256"
CONSTRAINTS="$OPT_DIR/constraints.txt"
ETC_DIR="$ROOT/etc/gate"
CONFIG="$ETC_DIR/gate.toml"
ALLOWLIST="$ETC_DIR/allowlist.csv"
STATE_DIR="$ROOT/var/lib/gate"
UNIT_DST="$ROOT/etc/systemd/system/$UNIT"
BOOT_CONFIG="$ROOT/boot/firmware/config.txt"
CMD_LINK="$ROOT/usr/local/bin/gate"
CMD_TARGET="/opt/gate/venv/bin/gate"     # as seen on the target system

# ---------------------------------------------------------------- reporting
CHANGED=0
step() { printf '%-40s' "$1 "; }
ok() { printf 'ok (%s)\n' "${1:-unchanged}"; }
changed() { CHANGED=$((CHANGED + 1)); printf 'changed (%s)\n' "$1"; }

# ---------------------------------------------------------------- helpers
uid_of() { getent passwd "$1" | cut -d: -f3; }
gid_of() { getent group "$1" | cut -d: -f3; }

# ensure_dir PATH MODE UID GID -> prints nothing; returns 0 if it changed something
# (sets ENSURE_WHAT to a short description).
ENSURE_WHAT=""
ensure_dir() {
    local path="$1" mode="$2" uid="$3" gid="$4" cur
    if [[ ! -d "$path" ]]; then
        install -d -m "$mode" -o "$uid" -g "$gid" "$path"
        ENSURE_WHAT="created"
        return 0
    fi
    cur="$(stat -c '%a %u %g' "$path")"
    if [[ "$cur" != "$(printf '%o' "$((8#$mode))") $uid $gid" ]]; then
        chown "$uid:$gid" "$path"
        chmod "$mode" "$path"
        ENSURE_WHAT="fixed owner/mode, was $cur"
        return 0
    fi
    return 1
}

unit_enabled() { systemctl is-enabled --quiet "$UNIT" 2>/dev/null; }
unit_active() { systemctl is-active --quiet "$UNIT" 2>/dev/null; }

# A fingerprint of what pip would install: the package sources, its metadata,
# the numpy pin and the pip command line. Equal fingerprint => skip pip.
source_fingerprint() {
    local f
    (
        printf 'pip-args: %s\n' "${PIP_ARGS[*]}"
        printf 'constraints:\n'; cat "$1"
        cd "$SRC"
        for f in pyproject.toml setup.cfg setup.py README.md MANIFEST.in; do
            [[ -f "$f" ]] && sha256sum "$f"
        done
        find gate -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
            | LC_ALL=C sort -z | xargs -0 -r sha256sum
    ) | sha256sum | cut -d' ' -f1
}

# ---------------------------------------------------------------- install
do_install() {
    local missing=() p status

    if [[ -r "$ROOT/etc/os-release" ]] && ! grep -q '^VERSION_CODENAME=bookworm' "$ROOT/etc/os-release"; then
        warn "this is not Debian/Raspberry Pi OS Bookworm ($(sed -n 's/^PRETTY_NAME=//p' "$ROOT/etc/os-release" | tr -d '"')); continuing anyway"
    fi

    # 1. apt packages. picamera2 and libcamera come from apt only (a pip
    #    picamera2 lacks the libcamera bindings); --no-install-recommends keeps
    #    the desktop/Qt/OpenCV recommends off a headless Pi.
    step "apt packages"
    for p in "${APT_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
        [[ "$status" == "install ok installed" ]] || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "installing ${missing[*]} ..."
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q || die "apt-get update failed (network? see above)"
        apt-get install -y -q --no-install-recommends "${missing[@]}" \
            || die "apt-get install failed; python3-picamera2 and python3-lgpio come from the Raspberry Pi OS archive: is this Raspberry Pi OS Bookworm?"
        step "apt packages"; changed "installed ${missing[*]}"
    else
        ok
    fi

    # 2. system user and group 'gate': no login, no home.
    step "user $NAME"
    if getent passwd "$NAME" >/dev/null; then
        ok
    else
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "QR door gate daemon" "$NAME" \
            || die "useradd $NAME failed"
        changed "created system user $NAME"
    fi
    local g members add=() absent=()
    for g in "${DEVICE_GROUPS[@]}"; do
        if ! members="$(getent group "$g")"; then
            absent+=("$g")
            continue
        fi
        members=",$(cut -d: -f4 <<<"$members"),"
        [[ "$members" == *",$NAME,"* ]] || add+=("$g")
    done
    step "groups of $NAME (${DEVICE_GROUPS[*]})"
    if ((${#add[@]})); then
        usermod -a -G "$(IFS=,; echo "${add[*]}")" "$NAME" || die "usermod failed"
        changed "added to ${add[*]}"
    else
        ok
    fi
    ((${#absent[@]} == 0)) || warn "group(s) ${absent[*]} do not exist here; the unit's SupplementaryGroups= needs them (Raspberry Pi OS has both)"

    local root_uid root_gid gate_uid gate_gid
    root_uid="$(uid_of root)"; root_gid="$(gid_of root)"
    gate_uid="$(uid_of "$NAME")"; gate_gid="$(gid_of "$NAME")"
    [[ -n "$root_uid" && -n "$gate_uid" && -n "$gate_gid" ]] || die "cannot resolve the uid/gid of root or $NAME"

    # 3. venv with the system site-packages, so apt's picamera2/libcamera,
    #    lgpio, gpiozero and numpy stay importable.
    step "venv ${VENV#"$ROOT"}"
    local cfg="$VENV/pyvenv.cfg" recreate=""
    if [[ -x "$VENV/bin/python" && -f "$cfg" ]] && ! grep -qiE '^include-system-site-packages *= *true' "$cfg"; then
        recreate=" (recreated: it lacked --system-site-packages)"
        rm -rf "$VENV"
    fi
    if [[ -x "$VENV/bin/python" ]]; then
        ok
    else
        install -d -m 0755 -o "$root_uid" -g "$root_gid" "$OPT_DIR"
        "$SYS_PYTHON" -m venv --system-site-packages "$VENV" || die "python3 -m venv failed (is python3-venv installed?)"
        rm -f "$STAMP"
        changed "created$recreate"
    fi

    # 4. the gate package. The venv sees apt's numpy 1.x, which apt's
    #    simplejpeg/picamera2 are built against; numpy 2 from PyPI would break
    #    `import picamera2`. Pin numpy to exactly the version the venv imports
    #    now and let pip upgrade nothing it does not have to.
    step "gate package"
    local np_info np_version np_file
    np_info="$("$VENV/bin/python" -c 'import numpy; print(numpy.__version__); print(numpy.__file__)' 2>"$TMP/numpy.err")" \
        || die "the venv cannot import numpy (python3-numpy from apt should provide it): $(tail -n 1 "$TMP/numpy.err")"
    np_version="$(sed -n 1p <<<"$np_info")"
    np_file="$(sed -n 2p <<<"$np_info")"
    [[ "$np_version" =~ ^[0-9][0-9A-Za-z.+!-]*$ ]] || die "unexpected numpy version '$np_version'"
    case "$np_file" in
        /usr/lib/python3/dist-packages/*) ;;
        *) warn "the venv imports numpy $np_version from $np_file, not apt's python3-numpy; keeping it as it is" ;;
    esac
    local tmp="$TMP"
    printf '# Written by install.sh: keep apt numpy (picamera2 ABI)\nnumpy==%s\n' "$np_version" >"$tmp/constraints.txt"
    PIP_ARGS=(install --disable-pip-version-check --no-input --upgrade-strategy only-if-needed
              --constraint "${CONSTRAINTS#"$ROOT"}")
    local fp
    fp="$(source_fingerprint "$tmp/constraints.txt")"
    if [[ -x "$VENV/bin/gate" && -f "$STAMP" && "$(cat "$STAMP")" == "$fp" ]] \
        && cmp -s "$tmp/constraints.txt" "$CONSTRAINTS"; then
        ok
    else
        install -m 0644 -o "$root_uid" -g "$root_gid" "$tmp/constraints.txt" "$CONSTRAINTS"
        # Build from a copy: pip/setuptools would leave root-owned build/ and
        # *.egg-info directories in the technician's checkout.
        mkdir "$tmp/src"
        tar -C "$SRC" --exclude=.git --exclude=__pycache__ --exclude='*.egg-info' --exclude=build \
            --exclude=.venv --exclude=.pytest_cache -cf - . | tar -C "$tmp/src" -xf -
        echo "pip install (numpy pinned to $np_version) ..."
        "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
            --upgrade-strategy only-if-needed --constraint "$CONSTRAINTS" "$tmp/src" \
            || die "pip install of $SRC into $VENV failed (see above)"
        [[ -x "$VENV/bin/gate" ]] || die "pip finished but $VENV/bin/gate is missing"
        printf '%s\n' "$fp" >"$STAMP"
        PACKAGE_CHANGED=1
        step "gate package"; changed "installed from $SRC"
    fi
    # Check only: what the daemon will import on a Pi (never fails the install).
    local out
    if ! out="$("$VENV/bin/python" -c 'import numpy, gpiozero, lgpio, picamera2, pyzbar.pyzbar, zxingcpp' 2>&1)"; then
        warn "the venv cannot import the camera/GPIO stack yet: $(tail -n 1 <<<"$out")"
    fi

    # The `gate` command on root's PATH, for the technician's self-tests.
    step "command ${CMD_LINK#"$ROOT"}"
    if [[ -L "$CMD_LINK" && "$(readlink "$CMD_LINK")" == "$CMD_TARGET" ]]; then
        ok
    elif [[ -e "$CMD_LINK" || -L "$CMD_LINK" ]]; then
        ok "skipped: something else is there already"
        warn "${CMD_LINK#"$ROOT"} exists and is not a link to $CMD_TARGET; leaving it alone"
    else
        install -d -m 0755 "$(dirname "$CMD_LINK")"
        ln -s "$CMD_TARGET" "$CMD_LINK"
        changed "linked to $CMD_TARGET"
    fi

    # 5. config: never overwrite what the technician has.
    step "dir ${ETC_DIR#"$ROOT"}"
    if ensure_dir "$ETC_DIR" 0750 "$root_uid" "$gate_gid"; then changed "$ENSURE_WHAT"; else ok; fi
    step "config ${CONFIG#"$ROOT"}"
    local example="$SRC/config/gate.example.toml"
    if [[ -e "$CONFIG" ]]; then
        if [[ -f "$example" ]] && ! cmp -s "$example" "$CONFIG"; then
            ok "kept existing; differs from the example: diff $example ${CONFIG#"$ROOT"}"
        else
            ok "kept existing"
        fi
    else
        [[ -f "$example" ]] || die "$example is missing from this checkout"
        install -m 0640 -o "$root_uid" -g "$gate_gid" "$example" "$CONFIG"
        changed "installed from config/gate.example.toml; edit gate.id and the door pins"
    fi
    step "allowlist ${ALLOWLIST#"$ROOT"}"
    if [[ -e "$ALLOWLIST" ]]; then
        ok "kept existing"
    elif [[ -f "$SRC/config/allowlist.example.csv" ]]; then
        install -m 0640 -o "$root_uid" -g "$gate_gid" "$SRC/config/allowlist.example.csv" "$ALLOWLIST"
        changed "installed from config/allowlist.example.csv"
    else
        # An empty list: nobody is let in until the technician adds rows.
        printf 'code,label,valid_from,valid_until\n' >"$tmp/allowlist.csv"
        install -m 0640 -o "$root_uid" -g "$gate_gid" "$tmp/allowlist.csv" "$ALLOWLIST"
        changed "created with a header only: nobody is let in yet"
    fi

    # 6. state dir (journal, credential cache). systemd's StateDirectory=
    #    would create it too; doing it here lets `gate journal` work before
    #    the first start and keeps owner/mode in one place.
    step "dir ${STATE_DIR#"$ROOT"}"
    if ensure_dir "$STATE_DIR" 0750 "$gate_uid" "$gate_gid"; then changed "$ENSURE_WHAT"; else ok; fi

    # 7. GPIO lines freed by a killed process. Raspberry Pi kernels keep a
    #    freed output at its last level by default, so a daemon killed
    #    (SIGKILL, watchdog, OOM) while the door is released would leave it
    #    released until the restarted daemon locks it. strict_gpiod makes the
    #    kernel return a freed line to input: the relay driver's pull-down
    #    then switches the relay off (docs/install.md).
    step "boot config strict_gpiod"
    if [[ ! -f "$BOOT_CONFIG" ]]; then
        ok "skipped: no ${BOOT_CONFIG#"$ROOT"}"
        warn "no ${BOOT_CONFIG#"$ROOT"}: on a Raspberry Pi add 'dtparam=strict_gpiod' to it by hand (docs/install.md)"
    elif grep -qE '^[[:space:]]*dtparam=strict_gpiod([[:space:]]*(=[[:space:]]*on)?)?[[:space:]]*$' "$BOOT_CONFIG"; then
        ok
    else
        printf '\n# gate: a GPIO line freed by a killed process goes back to input (relay off)\n[all]\ndtparam=strict_gpiod\n' >>"$BOOT_CONFIG"
        REBOOT_NEEDED=1
        changed "added dtparam=strict_gpiod; takes effect after a reboot"
    fi
    local param
    for param in "$ROOT"/sys/module/pinctrl_bcm2835/parameters/persist_gpio_outputs \
                 "$ROOT"/sys/module/pinctrl_rp1/parameters/persist_gpio_outputs; do
        if [[ -r "$param" && "$(cat "$param")" == Y* && $REBOOT_NEEDED == 0 ]]; then
            param="${param#"$ROOT"/sys/module/}"
            warn "${param%%/*}.persist_gpio_outputs is Y: a killed daemon leaves the relay as it was. Reboot (dtparam=strict_gpiod); if it stays Y, add ${param%%/*}.persist_gpio_outputs=n to /boot/firmware/cmdline.txt"
        fi
    done

    # 8. the unit.
    local unit_changed=0
    step "unit ${UNIT_DST#"$ROOT"}"
    if cmp -s "$SRC/systemd/$UNIT" "$UNIT_DST"; then
        ok
    else
        install -d -m 0755 "$(dirname "$UNIT_DST")"
        install -m 0644 -o "$root_uid" -g "$root_gid" "$SRC/systemd/$UNIT" "$UNIT_DST"
        systemctl daemon-reload || die "systemctl daemon-reload failed"
        unit_changed=1
        changed "installed, daemon-reload"
    fi

    # 9. enable and start; restart only when the program or the unit changed.
    step "enable $UNIT"
    if unit_enabled; then
        ok
    else
        systemctl enable --quiet "$UNIT" || die "systemctl enable $UNIT failed"
        changed "enabled at boot"
    fi
    step "start $UNIT"
    if ((START == 0)); then
        if unit_active && ((unit_changed || PACKAGE_CHANGED)); then
            ok "not restarted (--no-start); new program/unit runs after: systemctl restart $NAME"
        else
            ok "skipped: --no-start"
        fi
    elif unit_active; then
        if ((unit_changed || PACKAGE_CHANGED)); then
            systemctl restart "$UNIT" || start_failed restart
            changed "restarted: new program or unit"
        else
            ok "running"
        fi
    else
        systemctl start "$UNIT" || start_failed start
        changed "started"
    fi
}

start_failed() {
    echo "FAILED" >&2
    die "systemctl $1 $UNIT failed. Look at: journalctl -u $NAME -e --no-pager
   A config error names the file and key: fix ${CONFIG#"$ROOT"} and run: sudo systemctl restart $NAME"
}

# ---------------------------------------------------------------- uninstall
do_uninstall() {
    step "stop $UNIT"
    if unit_active; then
        systemctl stop "$UNIT" || die "systemctl stop $UNIT failed"
        changed "stopped"
    else
        ok "not running"
    fi
    step "disable $UNIT"
    if unit_enabled; then
        systemctl disable --quiet "$UNIT" || die "systemctl disable $UNIT failed"
        changed "disabled"
    else
        ok "not enabled"
    fi
    step "unit ${UNIT_DST#"$ROOT"}"
    if [[ -e "$UNIT_DST" ]]; then
        rm -f "$UNIT_DST"
        systemctl daemon-reload || die "systemctl daemon-reload failed"
        systemctl reset-failed "$UNIT" 2>/dev/null || true
        changed "removed, daemon-reload"
    else
        ok "absent"
    fi
    step "command ${CMD_LINK#"$ROOT"}"
    if [[ -L "$CMD_LINK" && "$(readlink "$CMD_LINK")" == "$CMD_TARGET" ]]; then
        rm -f "$CMD_LINK"
        changed "removed"
    else
        ok "absent"
    fi
    step "program ${OPT_DIR#"$ROOT"}"
    if [[ -e "$OPT_DIR" ]]; then
        rm -rf "$OPT_DIR"
        changed "removed"
    else
        ok "absent"
    fi
    echo "kept: ${ETC_DIR#"$ROOT"} (config), ${STATE_DIR#"$ROOT"} (journal, credential cache), user $NAME, apt packages, any dtparam=strict_gpiod in ${BOOT_CONFIG#"$ROOT"}"
}

# ---------------------------------------------------------------- main
PACKAGE_CHANGED=0
REBOOT_NEEDED=0
PIP_ARGS=()
echo "gate $ACTION from $SRC${ROOT:+ (test root $ROOT)}"
"do_$ACTION"
if ((CHANGED)); then
    echo "done: $CHANGED step(s) changed"
    if ((REBOOT_NEEDED)); then
        echo "reboot once to apply the boot config: sudo reboot"
    fi
else
    echo "done: nothing changed, everything was already in place"
fi
