"""Persistence: function records (SQLite/PostgreSQL via SQLAlchemy Core) and code packages."""
