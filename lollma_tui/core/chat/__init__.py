"""Conversations: the in-memory model, the store, export and import."""
