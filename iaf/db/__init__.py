"""Database layer: SQLAlchemy models, the async engine, repositories with all SQL."""
