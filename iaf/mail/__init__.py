"""Invitation links, e-mails and the invitation landing page."""
