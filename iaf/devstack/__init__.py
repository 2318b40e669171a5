"""The embedded stack: real PostgreSQL, Temporal dev server and an SMTP sink as local processes."""
