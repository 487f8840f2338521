"""secroom usb_guard: the media ledger (pure logic) and the USB enforcement agent.

Modules, by who uses them:
- dashboard: ``ledger`` (control numbers, lifecycle transitions with audit records, overdue
  media, ``to_policy``), ``policy`` (``UsbPolicy``, embedded in the signed node policy),
  ``certificate`` + ``certificate_pdf`` + ``csv_export`` (NIST SP 800-88 certificates as PDF in
  Japanese/English and CSV, the media ledger CSV), ``usbguard_rules`` (USBGuard export),
  ``events`` (payload models of usb.inserted / usb.removed).
- room hosts: ``agent`` (+ ``sysfs``, ``descriptors``, ``udev``, ``medium_token``,
  ``readonly``, ``config``; a new disk goes through ``disk_gate``: ``token_check``, then
  ``exposure`` lets udev show it), ``decision`` (the pure ``decide``), ``registration``
  (writing a medium token), ``cli`` (``secroom usb agent|export-rules|init-medium``).
- tests and the demo: ``simulated`` (sysfs tree, /dev nodes and udev source in a directory;
  ``simulated_udev``: what udev's storage rule does with its disks).

Nothing here imports controller or dashboard; events leave through an ``emit`` callable.
"""
