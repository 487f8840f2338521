"""The exceptions usb_guard raises; vendor and OS errors are translated into these."""

from __future__ import annotations


class UsbGuardError(Exception):
    """Base class of every usb_guard error."""


class LedgerError(UsbGuardError):
    """An invalid ledger operation: a transition the lifecycle does not allow, or bad details."""


class DescriptorError(UsbGuardError):
    """The device's binary USB descriptors are malformed; the device is blocked."""


class SysfsError(UsbGuardError):
    """A sysfs attribute could not be read or written (device gone, bad value, no permission)."""


class TokenError(UsbGuardError):
    """The medium token could not be read, or the token block on the medium is malformed."""


class ReadOnlyError(UsbGuardError):
    """A block device could not be switched to read-only."""


class UdevError(UsbGuardError):
    """The udev event source failed (netlink socket, pyudev)."""


class CertificateError(UsbGuardError):
    """A sanitisation certificate could not be built or rendered."""


class FontError(CertificateError):
    """No Japanese TrueType font is installed for the PDF certificates."""


class ExposureError(UsbGuardError):
    """A checked disk could not be marked for udev (the mark directory or the trigger failed)."""
