"""`fercam doctor`'s tray check: which pystray backend FER Cam gets, and what the user can do with it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

TRAY_BACKENDS = ("appindicator", "gtk", "xorg", "win32", "darwin", "dummy")


def has_typelib(namespace: str, version: str) -> bool:
    """Whether PyGObject can load `namespace` (a GObject-introspection typelib such as Gtk 3.0)."""
    try:
        import gi

        gi.require_version(namespace, version)
        return True
    except (ImportError, ValueError):
        return False


TRAY_GIVES = {
    "appindicator": "a full menu (AppIndicator: KDE, XFCE, Cinnamon, GNOME with the AppIndicator extension)",
    "gtk": "a full menu (GTK status icon, for X11 trays)",
    "xorg": "no menu: a click on the icon opens the FER Cam window, which has every control and Quit",
    "win32": "a full menu",
    "darwin": "a full menu",
    "dummy": "no icon at all (for tests)",
}
TRAY_MENU_FIX = (
    "for a full menu: sudo apt install python3-gi gir1.2-ayatanaappindicator3-0.1, then run "
    "installer/linux/install.sh again (it makes them visible to FER Cam's environment)"
)


def linux_tray_backend(has_module: Callable[[str], bool], has_typelib: Callable[[str, str], bool]) -> str:
    """The backend pystray picks on Linux, found without importing pystray (that would open the display)."""
    if has_module("gi"):
        if has_typelib("AyatanaAppIndicator3", "0.1") or has_typelib("AppIndicator3", "0.1"):
            return "appindicator"
        if has_typelib("Gtk", "3.0"):
            return "gtk"
    return "xorg" if has_module("Xlib") else ""


def tray_verdict(
    env: Mapping[str, str], system: str, has_module: Callable[[str], bool], has_typelib: Callable[[str, str], bool]
) -> tuple[bool, str, str]:
    """(ok, what the user gets, the fix): ok only where the tray has a menu."""
    chosen = env.get("PYSTRAY_BACKEND", "")
    if chosen and chosen not in TRAY_BACKENDS:
        return (
            False,
            f"PYSTRAY_BACKEND={chosen} is not a pystray backend",
            f"unset PYSTRAY_BACKEND or set it to one of {', '.join(TRAY_BACKENDS)}",
        )
    if not chosen and system != "Linux":
        chosen = "win32" if system == "Windows" else "darwin"
    backend = chosen or linux_tray_backend(has_module, has_typelib)
    if not backend:
        return False, "no tray backend (neither PyGObject nor python-xlib)", TRAY_MENU_FIX
    detail = f"pystray {backend} backend: {TRAY_GIVES[backend]}"
    return backend != "xorg", detail, TRAY_MENU_FIX if backend == "xorg" else ""
