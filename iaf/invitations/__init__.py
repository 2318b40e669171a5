"""Room invitations by e-mail: invite, resend, revoke, and accept (signed in or signing up)."""
