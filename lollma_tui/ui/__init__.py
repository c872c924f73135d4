"""The Textual user interface: it renders core snapshots and events and sends intents back."""
