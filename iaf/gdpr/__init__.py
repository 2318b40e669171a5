"""GDPR export (Art. 15/20) and erasure (Art. 17): steps, export schema, receipts, scans, CLI."""
