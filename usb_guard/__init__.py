"""secroom usb_guard package."""
