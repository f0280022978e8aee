"""One adapter module per technology."""
