"""Retrieval: chunking documents, embedding text, and the Qdrant collections agents search."""
