"""daca_kit: a working prototype kit for agentic chat services on a free-tier stack."""
