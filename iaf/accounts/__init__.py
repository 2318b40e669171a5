"""People and their organisations: sign-up, colleagues, password login, access tokens."""
