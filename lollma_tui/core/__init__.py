"""Everything below the UI: backends, models, hardware, chat. Never imports Textual or rich."""
