"""A private CUPS for the demo: one room printer as production has it (a stopped hold queue that
staff print to, and a hidden release queue the gateway moves released jobs to; see
hardware/cups/README.md), on a free loopback port, every file under one temporary folder.

Jobs land in /dev/null through a minimal PostScript PPD. Submitting trusts
``requesting-user-name`` (``lp -U user001``) so the demo can print as any of its staff without
system accounts; production requires authentication (hardware/cups/README.md). cupsd drops to
user lp for its filters, so it needs root: as another user the panel shows printing disabled.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PRINTER = "room-printer"
PPD = """*PPD-Adobe: "4.3"
*FormatVersion: "4.3"
*FileVersion: "1.0"
*LanguageVersion: English
*LanguageEncoding: ISOLatin1
*PCFileName: "SECROOM.PPD"
*Manufacturer: "secroom"
*Product: "(secroom demo printer)"
*ModelName: "secroom demo printer"
*ShortNickName: "secroom demo printer"
*NickName: "secroom demo printer"
*PSVersion: "(3010.000) 0"
*LanguageLevel: "3"
*ColorDevice: False
*DefaultColorSpace: Gray
*FileSystem: False
*Throughput: "1"
*LandscapeOrientation: Plus90
*TTRasterizer: Type42
*OpenUI *PageSize/Media Size: PickOne
*OrderDependency: 10 AnySetup *PageSize
*DefaultPageSize: A4
*PageSize A4/A4: "<</PageSize[595 842]/ImagingBBox null>>setpagedevice"
*CloseUI: *PageSize
*OpenUI *PageRegion: PickOne
*OrderDependency: 10 AnySetup *PageRegion
*DefaultPageRegion: A4
*PageRegion A4/A4: "<</PageSize[595 842]/ImagingBBox null>>setpagedevice"
*CloseUI: *PageRegion
*DefaultImageableArea: A4
*ImageableArea A4/A4: "18 36 577 806"
*DefaultPaperDimension: A4
*PaperDimension A4/A4: "595 842"
*DefaultFont: Courier
*Font Courier: Standard "(002.004S)" Standard ROM
"""
_SUBMIT = "Create-Job Print-Job Print-URI Validate-Job Send-Document Send-URI Close-Job"
_SYSTEM = ("Get-Jobs Get-Job-Attributes Hold-Job Release-Job Restart-Job Resume-Job "
           "Set-Job-Attributes CUPS-Move-Job Cancel-Job Cancel-Jobs Pause-Printer Resume-Printer "
           "Enable-Printer Disable-Printer CUPS-Accept-Jobs CUPS-Reject-Jobs "
           "CUPS-Add-Modify-Printer CUPS-Delete-Printer Set-Printer-Attributes")
POLICY = (
    "<Policy default>\n"
    "  JobPrivateAccess default\n  JobPrivateValues default\n"
    f"  <Limit {_SUBMIT}>\n    Order deny,allow\n  </Limit>\n"
    f"  <Limit {_SYSTEM}>\n    AuthType Default\n    Require user @SYSTEM\n"
    "    Order deny,allow\n  </Limit>\n"
    "  <Limit All>\n    Order deny,allow\n  </Limit>\n"
    "</Policy>\n"
)


class CupsUnavailable(RuntimeError):
    """The private CUPS cannot run here; the message says why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DemoCups:
    def __init__(self) -> None:
        cupsd = shutil.which("cupsd") or next(
            (p for p in ("/usr/sbin/cupsd",) if Path(p).exists()), None)
        lpadmin = shutil.which("lpadmin") or next(
            (p for p in ("/usr/sbin/lpadmin",) if Path(p).exists()), None)
        if cupsd is None or lpadmin is None or shutil.which("lp") is None:
            raise CupsUnavailable("CUPS is not installed (apt-get install cups)")
        if os.geteuid() != 0:
            raise CupsUnavailable("the demo's private CUPS needs root (its filters run as lp): "
                                  "run the demo as root to try card-released printing")
        self.cupsd, self.lpadmin = cupsd, lpadmin
        self.port = _free_port()
        # every folder above the spool must be searchable by user lp: a folder of our own
        self.root = Path(tempfile.mkdtemp(prefix="secroom-demo-cups-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def _dir(self, name: str, mode: int = 0o755) -> Path:
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(mode)
        return d

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "CUPS_USER"}
        return env | {"CUPS_SERVER": self.server, "CUPS_STATEDIR": str(self.state_dir)}

    def start(self, timeout: float = 15.0) -> None:
        self.root.chmod(0o711)
        etc = self._dir("etc")
        self._dir("etc/ppd")
        self._dir("etc/ssl", 0o700)
        spool, tmp = self._dir("spool", 0o710), self._dir("spool/tmp", 0o1777)
        cache, logs = self._dir("cache"), self._dir("log")
        self._dir("state")
        self._dir("state/certs", 0o711)
        (self.root / "demo.ppd").write_text(PPD)
        files = etc / "cups-files.conf"
        files.write_text(
            f"ServerRoot {etc}\nRequestRoot {spool}\nTempDir {tmp}\nCacheDir {cache}\n"
            f"StateDir {self.state_dir}\nErrorLog {logs}/error_log\nAccessLog {logs}/access_log\n"
            f"PageLog {logs}/page_log\nFileDevice Yes\nSystemGroup root\nUser lp\nGroup lp\n")
        conf = etc / "cupsd.conf"
        conf.write_text(
            f"Listen 127.0.0.1:{self.port}\nLogLevel warn\nBrowsing No\n"
            "BrowseLocalProtocols none\nWebInterface No\nDefaultAuthType Basic\n"
            "DefaultEncryption Never\nDirtyCleanInterval 0\nPreserveJobHistory Yes\n"
            "PreserveJobFiles No\n<Location />\n  Order allow,deny\n  Allow 127.0.0.1\n"
            "</Location>\n" + POLICY)
        self.proc = subprocess.Popen([self.cupsd, "-f", "-c", str(conf), "-s", str(files)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self._open():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise CupsUnavailable(f"cupsd did not start (exit {self.proc.poll()})")
            time.sleep(0.05)  # an outside daemon: nothing to wait on but its port
        self._admin(self.lpadmin, "-h", self.server, "-p", PRINTER, "-E",
                    "-v", "file:///dev/null", "-P", str(self.root / "demo.ppd"))
        self._admin("cupsdisable", "-h", self.server, "-r", "held until released by card",
                    PRINTER)
        release = f"{PRINTER}-release"
        self._admin(self.lpadmin, "-h", self.server, "-p", release, "-E",
                    "-v", "file:///dev/null", "-P", str(self.root / "demo.ppd"))
        self._admin(self.lpadmin, "-h", self.server, "-p", release, "-u", "allow:root")

    def _open(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def _admin(self, *args: str) -> None:
        done = subprocess.run(list(args), env=self._env(), capture_output=True, text=True,
                              timeout=30, check=False)
        if done.returncode != 0:
            raise CupsUnavailable(f"{args[0]} failed: {done.stderr.strip()[:200]}")

    def submit(self, cups_user: str, title: str) -> int:
        """A one-page PostScript job as ``cups_user``; returns the job id."""
        doc = self.root / "doc.ps"
        doc.write_text("%!PS-Adobe-3.0\n%%Pages: 1\n%%EndComments\n%%Page: 1 1\n"
                       "/Courier findfont 12 scalefont setfont 72 720 moveto (secroom) show "
                       "showpage\n%%EOF\n")
        done = subprocess.run(
            ["lp", "-h", self.server, "-U", cups_user, "-d", PRINTER, "-t", title, str(doc)],
            env=self._env(), stdin=subprocess.DEVNULL, start_new_session=True,
            capture_output=True, text=True, timeout=30, check=False)
        if "request id is " not in done.stdout:
            raise CupsUnavailable(f"lp refused the job: {done.stderr.strip()[:200]}")
        token = done.stdout.split("request id is ", 1)[1].split(" ", 1)[0]
        return int(token.rsplit("-", 1)[1])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)
