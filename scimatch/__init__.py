"""scimatch: hybrid search and matching for the Digital Science Portal."""

__version__ = "0.1.0"
