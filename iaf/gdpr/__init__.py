"""GDPR export (Art. 15/20) and erasure (Art. 17): step names, export schema, receipts, scans, CLI."""
