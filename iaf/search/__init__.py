"""Message search: the query language, its resolution to ids, the highlighted results."""
