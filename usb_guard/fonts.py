"""Where the Japanese TrueType font for the PDF certificates is.

reportlab embeds TrueType (glyf) fonts only: the Noto CJK fonts Debian installs are OpenType/CFF
and cannot be used. Install ``fonts-ipaexfont-gothic`` (or ``fonts-ipafont-gothic``), or point
``SECROOM_JP_FONT`` at any Japanese .ttf file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from usb_guard.errors import FontError

ENV_VAR = "SECROOM_JP_FONT"
CANDIDATES = (
    Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
    Path("/usr/share/fonts/truetype/ipaexfont-gothic/ipaexg.ttf"),
    Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"),
    Path("/usr/share/fonts/truetype/ipafont-gothic/ipag.ttf"),
    Path("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf"),
)
_TRUETYPE_MAGIC = (b"\x00\x01\x00\x00", b"true")


def is_truetype(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) in _TRUETYPE_MAGIC
    except OSError:
        return False


def find_japanese_ttf(extra: Iterable[Path] = ()) -> Path:
    """The first usable Japanese TrueType font: $SECROOM_JP_FONT, ``extra``, then Debian's."""
    tried: list[Path] = []
    env = os.environ.get(ENV_VAR)
    for path in ([Path(env)] if env else []) + list(extra) + list(CANDIDATES):
        tried.append(path)
        if path.is_file() and is_truetype(path):
            return path
    raise FontError(
        "no Japanese TrueType font found for the PDF certificates (tried "
        + ", ".join(str(p) for p in tried)
        + "): apt-get install fonts-ipaexfont-gothic, or set "
        + f"{ENV_VAR} to a Japanese .ttf (OpenType/CFF fonts such as Noto CJK do not work)"
    )
