"""FastAPI app: REST for external systems and the inbox, and authentication."""
