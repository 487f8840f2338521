"""A private cupsd owned by one test: own config, spool and state dirs, a free port.

The daemon listens only on 127.0.0.1:PORT (no domain socket, no Bonjour, no browsing) and keeps
everything under one work directory, so it never touches the machine's own CUPS. It can be
SIGKILLed and restarted on the same port and dirs: held jobs live in the private spool
(``DirtyCleanInterval 0`` writes every job change to disk at once) and come back after a restart.

The test policy trusts ``requesting-user-name`` for job submission (``lp -U alice``), so tests can
submit as several users without system accounts; production requires authentication instead
(see hardware/cups/README.md). Job and printer administration (Release-Job, Cancel-Job,
Hold-New-Jobs) is limited to the owner or the system group, as in production.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import free_port, port_open, require_binary, stop_process, wait_until

PRINTER = "room-printer"
# The production policy, loaded too so hardware/cups/setup-queues.sh can be run against us.
PRODUCTION_POLICY = Path(__file__).resolve().parents[2] / "hardware/cups/secroom-policy.conf"

# A minimal PostScript PPD: jobs go through pstops only, and land in /dev/null.
MINIMAL_PPD = """*PPD-Adobe: "4.3"
*FormatVersion: "4.3"
*FileVersion: "1.0"
*LanguageVersion: English
*LanguageEncoding: ISOLatin1
*PCFileName: "SECROOM.PPD"
*Manufacturer: "secroom"
*Product: "(secroom test printer)"
*ModelName: "secroom test printer"
*ShortNickName: "secroom test printer"
*NickName: "secroom test printer"
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

# Operation policy of the test daemon: the production policy (hardware/cups/secroom-policy.conf)
# except that job submission trusts requesting-user-name (tests submit as alice and bob without
# system accounts) and listing requires @SYSTEM (libcups only offers the root Local certificate
# for @SYSTEM limits; production uses Basic auth and valid-user).
_SUBMIT = "Create-Job Print-Job Print-URI Validate-Job Send-Document Send-URI Close-Job"
_LIST = "Get-Jobs Get-Job-Attributes"
_OWNER = "Cancel-Job Cancel-My-Jobs CUPS-Get-Document Create-Job-Subscription Renew-Subscription \
Cancel-Subscription Get-Notifications"
_SYSTEM_JOB = "Hold-Job Release-Job Restart-Job Resume-Job Set-Job-Attributes CUPS-Move-Job \
Reprocess-Job Purge-Jobs Cancel-Current-Job Suspend-Current-Job"
_SYSTEM_PRINTER = "Pause-Printer Resume-Printer Enable-Printer Disable-Printer Hold-New-Jobs \
Release-Held-New-Jobs CUPS-Accept-Jobs CUPS-Reject-Jobs CUPS-Add-Modify-Printer \
CUPS-Delete-Printer Set-Printer-Attributes Cancel-Jobs Restart-Printer"


def _limit(ops: str, require: str | None) -> str:
    body = f"    AuthType Default\n    Require {require}\n" if require else ""
    return f"  <Limit {ops}>\n{body}    Order deny,allow\n  </Limit>\n"


POLICY = (
    "<Policy default>\n"
    "  JobPrivateAccess default\n  JobPrivateValues default\n"
    "  SubscriptionPrivateAccess default\n  SubscriptionPrivateValues default\n"
    + _limit(_SUBMIT, None)
    + _limit(_LIST, "user @SYSTEM")
    + _limit(_OWNER, "user @OWNER @SYSTEM")
    + _limit(_SYSTEM_JOB, "user @SYSTEM")
    + _limit(_SYSTEM_PRINTER, "user @SYSTEM")
    + _limit("All", None)
    + "</Policy>\n"
)


class Cupsd:
    """cupsd on 127.0.0.1:port with everything under ``workdir``."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = require_binary("cupsd", "/usr/sbin/cupsd")
        self.lpadmin = require_binary("lpadmin", "/usr/sbin/lpadmin")
        self.port = port or free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    # -- configuration -------------------------------------------------------------------
    def _dir(self, name: str, mode: int = 0o755) -> Path:
        d = self.workdir / name
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(mode)
        return d

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Filters run as user lp: every directory above the spool must be traversable by others.
        # pytest keeps its base temp dir at 0700 (and re-tightens it in concurrent sessions), so
        # the daemon lives in its own tempfile.mkdtemp() directory (see Cupsd.private()).
        self.workdir.chmod(0o711)
        for parent in self.workdir.parents:
            if not parent.stat().st_mode & 0o001:
                raise RuntimeError(
                    f"{parent} is not searchable by user lp, so CUPS filters could not read the "
                    "spool; put the cupsd work dir elsewhere (Cupsd.private() uses /tmp)"
                )
        self.server_root = self._dir("etc")
        self._dir("etc/ppd")
        self._dir("etc/ssl", 0o700)
        self.spool = self._dir("spool", 0o710)
        self.tmp = self._dir("spool/tmp", 0o1777)
        self.cache = self._dir("cache")
        self.state = self._dir("state")
        self._dir("state/certs", 0o711)
        self.logs = self._dir("log")
        self.ppd = self.workdir / "secroom.ppd"
        self.ppd.write_text(MINIMAL_PPD)
        self.files_conf = self.server_root / "cups-files.conf"
        self.files_conf.write_text(
            f"ServerRoot {self.server_root}\n"
            f"RequestRoot {self.spool}\n"
            f"TempDir {self.tmp}\n"
            f"CacheDir {self.cache}\n"
            f"StateDir {self.state}\n"
            f"ErrorLog {self.logs}/error_log\n"
            f"AccessLog {self.logs}/access_log\n"
            f"PageLog {self.logs}/page_log\n"
            "FileDevice Yes\n"
            "SystemGroup root\n"
            "User lp\n"
            "Group lp\n"
        )
        self.conf = self.server_root / "cupsd.conf"
        self.conf.write_text(
            f"Listen 127.0.0.1:{self.port}\n"
            "LogLevel warn\n"
            "Browsing No\n"
            "BrowseLocalProtocols none\n"
            "WebInterface No\n"
            "DefaultAuthType Basic\n"
            "DefaultEncryption Never\n"
            "DirtyCleanInterval 0\n"
            "PreserveJobHistory Yes\n"
            "PreserveJobFiles No\n"
            "MaxJobs 2000\n"
            "MaxJobsPerPrinter 0\n"
            "MaxJobsPerUser 0\n"
            "JobRetryInterval 5\n"
            "<Location />\n  Order allow,deny\n  Allow 127.0.0.1\n</Location>\n"
            + POLICY
            + PRODUCTION_POLICY.read_text(encoding="utf-8")
        )

    @classmethod
    @contextmanager
    def private(cls) -> Iterator[Cupsd]:
        """A started cupsd in a fresh temporary directory, stopped and removed afterwards."""
        workdir = Path(tempfile.mkdtemp(prefix="secroom-cupsd-"))
        daemon = cls(workdir)
        try:
            daemon.start()
            yield daemon
        finally:
            daemon.stop()
            shutil.rmtree(workdir, ignore_errors=True)

    # -- life cycle ----------------------------------------------------------------------
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for CUPS command-line clients talking to this daemon."""
        env = dict(os.environ)
        env["CUPS_SERVER"] = self.server
        env["CUPS_STATEDIR"] = str(self.state)
        env.pop("CUPS_USER", None)
        return env

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-f", "-c", str(self.conf), "-s", str(self.files_conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"cupsd exited with {self.proc.returncode}: {err}")
            return port_open(self.port)

        wait_until(ready, 15, f"cupsd on port {self.port}")

    def _admin(self, *args: str) -> None:
        subprocess.run(list(args), check=True, env=self.env(), capture_output=True, timeout=30)

    def add_printer(
        self, name: str, *, hold_default: bool = False, device: str = "file:///dev/null"
    ) -> str:
        """A plain enabled queue on ``device`` (file:///dev/null) with the minimal PPD."""
        args = [
            self.lpadmin, "-h", self.server, "-p", name, "-E",
            "-v", device, "-P", str(self.ppd),
        ]  # fmt: skip
        if hold_default:
            args += ["-o", "job-hold-until-default=indefinite"]
        self._admin(*args)
        return name

    def add_room_printer(
        self, name: str = PRINTER, *, device: str = "file:///dev/null", staging: bool = True
    ) -> tuple[str, str]:
        """The production layout (hardware/cups/setup-queues.sh): a stopped hold queue that
        clients print to, an enabled release queue on ``device`` only the system group may print
        to, and (``staging``) a stopped staging queue only the system group may print to."""
        release = f"{name}-release"
        self.add_printer(name)
        self._admin("cupsdisable", "-h", self.server, "-r", "held until released by card", name)
        self.add_printer(release, device=device)
        self._admin(self.lpadmin, "-h", self.server, "-p", release, "-u", "allow:root")
        if staging:
            self.add_printer(f"{name}-staging")
            self._admin(self.lpadmin, "-h", self.server, "-p", f"{name}-staging", "-u",
                        "allow:root")
            self._admin("cupsdisable", "-h", self.server, "-r", "release in progress",
                        f"{name}-staging")
        return name, release

    def submit(
        self,
        user: str,
        printer: str = PRINTER,
        *,
        title: str = "doc",
        hold: str | None = None,
        copies: int = 1,
        env: dict[str, str] | None = None,
    ) -> int:
        """Submit a small PostScript job as ``user`` with ``lp``; returns the job id."""
        doc = self.workdir / "doc.ps"
        if not doc.exists():
            doc.write_text(
                "%!PS-Adobe-3.0\n%%Pages: 1\n%%EndComments\n%%Page: 1 1\n"
                "/Courier findfont 12 scalefont setfont 72 720 moveto (secroom) show showpage\n"
                "%%EOF\n"
            )
        args = ["lp", "-h", self.server, "-U", user, "-d", printer, "-t", title,
                "-n", str(copies)]  # fmt: skip
        if hold is not None:
            args += ["-H", hold]
        out = subprocess.run(
            [*args, str(doc)],
            check=False,
            env=self.env() | (env or {}),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # no controlling tty: libcups never prompts for a password
            capture_output=True,
            text=True,
            timeout=30,
        )
        if "request id is " not in out.stdout:
            raise RuntimeError(f"lp refused the job: {out.stderr.strip()}")
        # "request id is room-printer-12 (1 file(s))"
        token = out.stdout.split("request id is ", 1)[1].split(" ", 1)[0]
        return int(token.rsplit("-", 1)[1])

    def kill(self) -> None:
        """SIGKILL cupsd (a crash, not a clean shutdown)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        wait_until(lambda: not port_open(self.port), 5, "cupsd port to close")

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)
            if self.proc.stderr:
                self.proc.stderr.close()

    def error_log(self) -> str:
        path = self.logs / "error_log"
        return path.read_text(errors="replace") if path.exists() else ""
