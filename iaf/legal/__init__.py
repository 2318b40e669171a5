"""Legal pages filled from settings, and the breach report (docs/breach-notification.md)."""
