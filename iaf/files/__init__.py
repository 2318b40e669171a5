"""Files attached to messages: type by content, the file store (local or S3), the rules."""
